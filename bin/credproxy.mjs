#!/usr/bin/env node
// `forward` runs inside containers: it loads its own small entry, not the CLI (docs/PROTOCOL.md §23).
const args = process.argv.slice(2)
const forward = args[0] === "forward" && !args.some((arg) => arg === "--help" || arg === "-h")
await import(forward ? "../dist/forward.js" : "../dist/cli.js")
