// Bundles the CLI (and the library entry points) with esbuild: loading Effect's
// many ES modules one by one costs 0.4-0.9 s per start here; one file does not.

import { existsSync, readdirSync, rmSync } from "node:fs"
import { build } from "esbuild"

// Chunk names carry content hashes: drop the previous build's so no stale chunk lingers in dist/.
rmSync("dist/chunks", { recursive: true, force: true })
for (const file of existsSync("dist") ? readdirSync("dist") : []) {
  if (/\.js(\.map)?$/.test(file)) rmSync(`dist/${file}`)
}

const entries = { cli: "src/cli/main.ts", index: "src/index.ts", client: "src/client.ts" }
const entryPoints = Object.fromEntries(Object.entries(entries).filter(([, file]) => existsSync(file)))

await build({
  entryPoints,
  outdir: "dist",
  bundle: true,
  platform: "node",
  target: "node20",
  format: "esm",
  splitting: true,
  outExtension: { ".js": ".js" },
  chunkNames: "chunks/[name]-[hash]",
  // koffi carries native binaries resolved at run time; it stays a real dependency.
  external: ["koffi"],
  // CommonJS dependencies (proper-lockfile) call require() for Node built-ins.
  banner: {
    js: 'import { createRequire as __credproxyRequire } from "node:module"; const require = __credproxyRequire(import.meta.url);'
  },
  sourcemap: true,
  minifySyntax: true,
  logLevel: "warning"
})
