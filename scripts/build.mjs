// Builds dist/ with esbuild:
// - the CLI (dist/cli.js) as one file with its dependencies inside: loading Effect's many ES
//   modules one by one costs 0.4-0.9 s per start here; one file does not;
// - the library entries (dist/index.js, dist/client.js) with every dependency left in
//   node_modules, so a host program that embeds credproxy shares one copy of `effect` with it.

import { copyFileSync, existsSync, readdirSync, readFileSync, rmSync } from "node:fs"
import { build } from "esbuild"

// Chunk names carry content hashes: drop the previous build's so no stale chunk lingers in dist/.
rmSync("dist/chunks", { recursive: true, force: true })
for (const file of existsSync("dist") ? readdirSync("dist") : []) {
  if (/\.(c?js)(\.map)?$/.test(file)) rmSync(`dist/${file}`)
}

const common = {
  outdir: "dist",
  bundle: true,
  platform: "node",
  target: "node20",
  format: "esm",
  outExtension: { ".js": ".js" },
  sourcemap: true,
  minifySyntax: true,
  logLevel: "warning"
}

await build({
  ...common,
  entryPoints: { cli: "src/cli/main.ts" },
  // koffi carries native binaries resolved at run time; it stays a real dependency. undici (1.3 MB)
  // is loaded from node_modules only in egress mode, so a server without it does not parse it.
  external: ["koffi", "undici"],
  // CommonJS dependencies (proper-lockfile) call require() for Node built-ins.
  banner: {
    js: 'import { createRequire as __credproxyRequire } from "node:module"; const require = __credproxyRequire(import.meta.url);'
  }
})

// `credproxy forward` (a byte pipe inside containers) on its own: node built-ins only, no server code.
await build({ ...common, entryPoints: { forward: "src/forward/main.ts" } })

await build({
  ...common,
  entryPoints: { index: "src/index.ts", client: "src/client.ts" },
  packages: "external",
  splitting: true,
  chunkNames: "chunks/[name]-[hash]"
})

// The keyring helper runs as a process of its own (src/layers/keyring/keyring-helper.cjs says why);
// the code that starts it looks for it next to itself, so that code must not land in a chunk.
copyFileSync("src/layers/keyring/keyring-helper.cjs", "dist/keyring-helper.cjs")
for (const file of readdirSync("dist/chunks")) {
  if (readFileSync(`dist/chunks/${file}`, "utf8").includes("keyring-helper.cjs")) {
    throw new Error(`dist/chunks/${file} starts the keyring helper, which is not next to it`)
  }
}
