import * as fs from "node:fs"
import * as path from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { runCli, spawnCli, startServe, useCliWorkspace } from "./support/cli.js"
import { egressServeArgs, PHANTOM, sandboxRequest, writeFile0600 } from "./support/egress.js"
import { startUpstream, type Upstream } from "./support/https-upstream.js"
import { poll } from "./support/until.js"

/**
 * `exec --egress` (a generated phantom in each route's env), `--print-env`,
 * and `credproxy forward` (the byte pipe for containers), through the real
 * binary against a real HTTPS upstream.
 */

const workspace = useCliWorkspace()
const upstreams: Array<Upstream> = []
afterEach(async () => {
  for (const upstream of upstreams.splice(0)) await upstream.close()
})

const REAL_KEY = "sk-real-key-for-exec-0123456789"

const setUp = async () => {
  const upstream = await startUpstream((request, res) => {
    res.writeHead(200, { "content-type": "application/json" })
    res.end(JSON.stringify({ path: request.url, key: request.headers["x-api-key"] === REAL_KEY }))
  })
  upstreams.push(upstream)
  const routes = writeFile0600(
    path.join(workspace.ws.root, "routes.json"),
    JSON.stringify({
      routes: {
        anthropic: {
          upstream: upstream.origin,
          credential: { apiKey: "anthropic" },
          header: "x-api-key",
          env: { ANTHROPIC_BASE_URL: "{url}", ANTHROPIC_API_KEY: "{phantom}" }
        }
      }
    })
  )
  const set = await runCli(["key", "set", "anthropic", "--data-dir", workspace.ws.dataDir], {
    stdin: REAL_KEY
  })
  expect(set.code).toBe(0)
  return { upstream, routes }
}

/** What the command in the sandbox does: one call with what its environment says, then a report. */
const SANDBOX_SCRIPT = `
const http = require("node:http")
const url = new URL(process.env.ANTHROPIC_BASE_URL + "/v1/messages?x=1")
const req = http.request(url, { method: "POST", headers: { "x-api-key": process.env.ANTHROPIC_API_KEY } }, (res) => {
  let body = ""
  res.on("data", (c) => (body += c))
  res.on("end", () => {
    process.stdout.write(JSON.stringify({
      status: res.statusCode,
      body,
      egress: process.env.LLXPRT_EGRESS_URL,
      base: process.env.ANTHROPIC_BASE_URL,
      phantom: process.env.ANTHROPIC_API_KEY,
      env: JSON.stringify(process.env)
    }))
  })
})
req.end("{}")
`

describe("exec --egress", () => {
  it("the command gets the route's env with a generated phantom, and its call reaches the upstream with the real key", async () => {
    const { upstream, routes } = await setUp()
    const result = await runCli([
      "exec",
      "--data-dir",
      workspace.ws.dataDir,
      "--socket-dir",
      workspace.ws.socketDir,
      "--egress",
      routes,
      "--egress-ca",
      upstream.caFile,
      "--",
      process.execPath,
      "-e",
      SANDBOX_SCRIPT
    ])
    expect(result.code).toBe(0)
    const seen = JSON.parse(result.stdout) as Record<string, string>
    expect(seen.status).toBe(200)
    expect(JSON.parse(seen.body!)).toEqual({ path: "/v1/messages?x=1", key: true })
    expect(seen.egress).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    expect(seen.base).toBe(`${seen.egress}/anthropic`)
    expect(seen.phantom).toMatch(/^[0-9a-f]{64}$/)
    expect(seen.env).not.toContain(REAL_KEY)
    expect(JSON.stringify(upstream.received[0]!.headers)).not.toContain(seen.phantom)
  })

  it("--print-env prints the egress variables and the forward line for a container", async () => {
    const { upstream, routes } = await setUp()
    const child = spawnCli([
      "exec",
      "--print-env",
      "--data-dir",
      workspace.ws.dataDir,
      "--socket-dir",
      workspace.ws.socketDir,
      "--egress",
      routes,
      "--egress-ca",
      upstream.caFile
    ])
    let stdout = ""
    child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk
    })
    await poll(
      () => stdout,
      (text) => text.includes("credproxy forward"),
      { what: "the printed environment", limitMs: 10_000 }
    )
    expect(stdout).toMatch(/^LLXPRT_EGRESS_URL=http:\/\/127\.0\.0\.1:8787$/m)
    expect(stdout).toMatch(/^ANTHROPIC_BASE_URL=http:\/\/127\.0\.0\.1:8787\/anthropic$/m)
    expect(stdout).toMatch(/^ANTHROPIC_API_KEY=[0-9a-f]{64}$/m)
    expect(stdout).toMatch(/-e ANTHROPIC_API_KEY/)
    expect(stdout).toMatch(
      /credproxy forward --listen 127\.0\.0\.1:8787 --to unix:\/.*llxprt-egress-\d+-[0-9a-f]{8}\.sock/
    )
    expect(stdout).not.toContain(REAL_KEY)
    child.kill("SIGTERM")
  })
})

describe("credproxy forward", () => {
  it("the same request works through forward, from a loopback port to the egress Unix socket", async () => {
    const { upstream, routes } = await setUp()
    const server = await startServe(egressServeArgs(workspace.ws, routes, upstream.caFile))
    const egress = server.ready.egress!
    expect(egress).toMatch(/^unix:\/.*llxprt-egress-\d+-[0-9a-f]{8}\.sock$/)
    expect(fs.statSync(egress.slice(5)).mode & 0o777).toBe(0o600)
    const direct = await sandboxRequest(egress, {
      path: "/anthropic/v1/models",
      headers: { "x-api-key": PHANTOM }
    })
    expect(direct.status).toBe(200)

    const forward = spawnCli(["forward", "--listen", "127.0.0.1:0", "--to", egress])
    let out = ""
    forward.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
      out += chunk
    })
    const { value } = await poll(
      () => out,
      (text) => text.includes("\n"),
      { what: "forward's ready line", limitMs: 10_000 }
    )
    const ready = JSON.parse(value) as { event: string; listen: string; to: string }
    expect(ready).toMatchObject({ event: "forwarding", to: egress })
    const piped = await sandboxRequest(`http://${ready.listen}`, {
      path: "/anthropic/v1/models?y=2",
      headers: { "x-api-key": PHANTOM }
    })
    expect(piped.status).toBe(200)
    expect(JSON.parse(piped.body)).toEqual({ path: "/v1/models?y=2", key: true })
    const refused = await sandboxRequest(`http://${ready.listen}`, { path: "/anthropic/v1/models" })
    expect(refused.status).toBe(401)
    forward.kill("SIGTERM")
  })

  it("forward's own bundle holds no server code, and bad targets are exit 2", async () => {
    const bundle = fs.readFileSync(path.resolve(import.meta.dirname, "../dist/forward.js"), "utf8")
    for (const serverCode of [
      "undici",
      "effect/",
      "RefreshCoordinator",
      "TokenStore",
      "credproxy/AccessPolicy"
    ]) {
      expect(bundle).not.toContain(serverCode)
    }
    const offLoopback = await runCli(["forward", "--listen", "0.0.0.0:8787", "--to", "unix:/tmp/x.sock"])
    expect(offLoopback.code).toBe(2)
    expect(offLoopback.stderr).toMatch(/--listen "0.0.0.0:8787" is not usable/)
    const relative = await runCli(["forward", "--to", "x.sock"])
    expect(relative.code).toBe(2)
  })
})
