import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"

/**
 * The package as a host program gets it (PROTOCOL.md §15): `npm pack`, the
 * tarball installed into an empty project, both entries imported from there.
 * The library leaves its dependencies in node_modules, so the project holds
 * one copy of `effect`, shared with the host's own code.
 */

const root = path.resolve(import.meta.dirname, "..")
let work: string
let project: string

const npm = (args: ReadonlyArray<string>, cwd: string) =>
  execFileSync("npm", [...args], { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] })

/** Every installed package.json of `name` under `dir`'s node_modules, nested ones included. */
const copiesOf = (dir: string, name: string): Array<string> => {
  const found: Array<string> = []
  const visit = (modules: string) => {
    if (!fs.existsSync(modules)) return
    for (const entry of fs.readdirSync(modules)) {
      const scoped = entry.startsWith("@")
      const packages = scoped
        ? fs.readdirSync(path.join(modules, entry)).map((p) => `${entry}/${p}`)
        : [entry]
      for (const pkg of packages) {
        const at = path.join(modules, pkg)
        if (pkg === name) found.push(at)
        visit(path.join(at, "node_modules"))
      }
    }
  }
  visit(path.join(dir, "node_modules"))
  return found
}

beforeAll(() => {
  work = fs.mkdtempSync(path.join(fs.realpathSync(os.tmpdir()), "cp-pack-"))
  // The tests' global setup built dist/ already; pack exactly that.
  const tarball = npm(["pack", "--ignore-scripts", "--silent", "--pack-destination", work], root).trim()
  project = path.join(work, "host")
  fs.mkdirSync(project)
  fs.writeFileSync(
    path.join(project, "package.json"),
    JSON.stringify({ name: "host-program", version: "1.0.0", private: true, type: "module" })
  )
  npm(
    ["install", "--prefer-offline", "--no-audit", "--no-fund", "--ignore-scripts", path.join(work, tarball)],
    project
  )
}, 180_000)

afterAll(() => {
  fs.rmSync(work, { recursive: true, force: true })
})

describe("the packed library in an empty project (§15)", () => {
  it("holds the built entries only, and one copy of effect", () => {
    const installed = path.join(project, "node_modules", "credproxy")
    expect(fs.existsSync(path.join(installed, "dist", "index.js"))).toBe(true)
    expect(fs.existsSync(path.join(installed, "dist", "client.js"))).toBe(true)
    expect(fs.existsSync(path.join(installed, "src"))).toBe(false)
    expect(fs.existsSync(path.join(installed, "test"))).toBe(false)
    expect(copiesOf(project, "effect")).toEqual([path.join(project, "node_modules", "effect")])
    // Nothing of effect is bundled into the library entries.
    const index = fs.readFileSync(path.join(installed, "dist", "index.js"), "utf8")
    expect(index).toMatch(/from "effect\//)
  })

  it("`credproxy` starts a proxy and `credproxy/client` talks to it, with the project's effect", () => {
    const dir = fs.mkdtempSync(path.join(work, "run-"))
    const script = `
      import { startCredentialProxy } from "credproxy"
      import { ProxyTokenStore, ProxyProviderKeyStorage } from "credproxy/client"
      import * as Effect from "effect/Effect"
      import { createRequire } from "node:module"
      const tokens = new Map([["acme", { access_token: "at", expiry: 2000000000, token_type: "Bearer", refresh_token: "rt" }]])
      const proxy = await startCredentialProxy({
        dataDir: ${JSON.stringify(path.join(dir, "data"))},
        socketDir: ${JSON.stringify(path.join(dir, "sock"))},
        logLevel: "error",
        tokenStore: {
          getToken: async (p) => tokens.get(p) ?? null,
          saveToken: async (p, t) => { tokens.set(p, t) },
          removeToken: async (p) => { tokens.delete(p) },
          listProviders: async () => [...tokens.keys()],
          listBuckets: async () => ["default"]
        },
        keyStorage: { getKey: async () => "sk", listKeys: async () => ["k"], hasKey: async () => true }
      })
      const store = new ProxyTokenStore({ socketPath: proxy.socketPath })
      const keys = new ProxyProviderKeyStorage({ socketPath: proxy.socketPath })
      const token = await store.getToken("acme")
      const key = await keys.getKey("k")
      await proxy.stop()
      const require = createRequire(import.meta.url)
      console.log(JSON.stringify({
        token,
        key,
        effect: require.resolve("effect"),
        succeed: await Effect.runPromise(Effect.succeed("shared"))
      }))
    `
    fs.writeFileSync(path.join(project, "run.mjs"), script)
    const out = execFileSync(process.execPath, ["run.mjs"], {
      cwd: project,
      encoding: "utf8",
      timeout: 60_000
    })
    const result = JSON.parse(out.trim().split("\n").pop() ?? "{}")
    expect(result.token).toEqual({ access_token: "at", expiry: 2000000000, token_type: "Bearer" })
    expect(result.key).toBe("sk")
    expect(result.effect.startsWith(path.join(project, "node_modules", "effect"))).toBe(true)
    expect(result.succeed).toBe("shared")
  }, 60_000)
})
