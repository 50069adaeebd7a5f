import { describe, expect, it } from "vitest"
import { runCli, spawnCli, startServe, useCliWorkspace } from "./support/cli.js"
import { FrameClient, type Json } from "./support/frame-client.js"
import { until } from "./support/until.js"

/**
 * `credproxy status`, `policy` and `approve` through the real binary against
 * a real `credproxy serve` (the admin socket in the data directory).
 */

const workspace = useCliWorkspace()
const data = () => ["--data-dir", workspace.ws.dataDir]
const serve = (...extra: Array<string>) =>
  startServe([...data(), "--socket-dir", workspace.ws.socketDir, "--log-format", "json", ...extra])

const seed = async () => {
  const token = {
    access_token: "at-secret",
    expiry: 2_000_000_000,
    token_type: "Bearer",
    refresh_token: "rt-secret"
  }
  expect(
    (await runCli(["token", "import", "anthropic", ...data()], { stdin: JSON.stringify(token) })).code
  ).toBe(0)
  expect((await runCli(["key", "set", "openai", ...data()], { stdin: "sk-secret" })).code).toBe(0)
}

const open = async (socketPath: string) => {
  const client = await FrameClient.open(socketPath)
  workspace.clients.push(client)
  return client
}

describe("credproxy status", () => {
  it("--json shows the running server, its connections and their requests; text fits 100 columns", async () => {
    await seed()
    const server = await serve()
    const a = await open(server.socketPath)
    const b = await open(server.socketPath)
    for (let i = 0; i < 2; i++)
      expect((await a.request("get_token", { provider: "anthropic" })).ok).toBe(true)
    await b.request("get_api_key", { name: "openai" })
    const result = await runCli(["status", "--json", ...data()])
    expect(result.code, result.stderr).toBe(0)
    const [status] = JSON.parse(result.stdout) as Array<Json>
    expect(status.pid).toBe(server.pid)
    expect(status.sockets.sandbox).toBe(server.socketPath)
    expect(status.sockets.admin.startsWith(`${workspace.ws.dataDir}/run/`)).toBe(true)
    expect(status.connections.map((c: Json) => c.requests)).toEqual(
      expect.arrayContaining([{ get_token: 2 }, { get_api_key: 1 }])
    )
    expect(status.connections.every((c: Json) => c.peerPid === process.pid)).toBe(true)
    expect(status.counters.requests.get_token).toEqual({ ok: 2 })
    const text = await runCli(["status", ...data()])
    expect(text.code).toBe(0)
    expect(text.stdout).toContain(`credproxy pid ${server.pid}`)
    expect(text.stdout).toContain("get_token 2")
    for (const line of text.stdout.split("\n")) expect(line.length).toBeLessThanOrEqual(100)
    expect(`${result.stdout}${text.stdout}`).not.toMatch(/at-secret|rt-secret|sk-secret/)
    expect((await server.stop()).code).toBe(0)
  })

  it("without a running server: says so, exit 0, `[]` as JSON", async () => {
    const text = await runCli(["status", ...data()])
    expect(text).toMatchObject({ code: 0 })
    expect(text.stdout).toContain("no credproxy server is running on the data directory")
    expect((await runCli(["status", "--json", ...data()])).stdout.trim()).toBe("[]")
  })

  it("--watch --json prints a snapshot a second until stopped, and stops at SIGINT with exit 0", async () => {
    const server = await serve()
    const watch = spawnCli(["status", "--watch", "--json", ...data()])
    const lines: Array<string> = []
    watch.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
      lines.push(...chunk.split("\n").filter((line) => line !== ""))
    })
    const exited = new Promise<number | null>((resolve) => watch.once("exit", (code) => resolve(code)))
    await until(() => lines.length >= 3, { what: "three snapshots", limitMs: 10_000 })
    watch.kill("SIGINT")
    expect(await exited).toBe(0)
    for (const line of lines) expect((JSON.parse(line) as Array<Json>)[0].pid).toBe(server.pid)
    expect((await server.stop()).code).toBe(0)
  })
})

describe("credproxy policy", () => {
  it("deny refuses the next request on an open connection at once; allow restores it", async () => {
    await seed()
    const server = await serve()
    const client = await open(server.socketPath)
    expect((await client.request("get_token", { provider: "anthropic" })).ok).toBe(true)
    const denied = await runCli(["policy", "deny", "anthropic", ...data()])
    expect(denied.code, denied.stderr).toBe(0)
    expect(denied.stdout).toBe(
      `pid ${server.pid}: tokens allow *, deny anthropic:*; keys allow *, deny none\n`
    )
    expect(await client.request("get_token", { provider: "anthropic" })).toMatchObject({
      code: "UNAUTHORIZED"
    })
    const allowed = await runCli(["policy", "allow", "anthropic", ...data()])
    expect(allowed.code).toBe(0)
    expect((await client.request("get_token", { provider: "anthropic" })).ok).toBe(true)
    const bad = await runCli(["policy", "deny", "a:b:c", ...data()])
    expect(bad.code).toBe(1)
    expect(bad.stderr).toContain('invalid token pattern "a:b:c": expected provider[:bucket]')
    expect(server.stderr()).toContain("access policy changed")
    expect((await server.stop()).code).toBe(0)
  })

  it("with no server running: exit 1, says which data directory", async () => {
    const result = await runCli(["policy", "show", ...data()])
    expect(result.code).toBe(1)
    expect(result.stderr).toContain(
      `no credproxy server is running on the data directory ${workspace.ws.dataDir}`
    )
  })
})

describe("credproxy approve (serve --confirm)", () => {
  it("answers what waits: `y` from standard input lets it through, `approve ID n` refuses", async () => {
    await seed()
    const server = await serve("--confirm")
    const client = await open(server.socketPath)
    client.send({ v: 1, id: "first", op: "get_token", payload: { provider: "anthropic" } })
    const waitingIds = async () => {
      const result = await runCli(["status", "--json", ...data()])
      return (JSON.parse(result.stdout) as Array<Json>)[0].waiting.map((w: Json) => w.id) as Array<string>
    }
    await until(async () => (await waitingIds()).length === 1, { what: "the use to wait" })
    const approved = await runCli(["approve", ...data()], { stdin: "y\n" })
    expect(approved.code, approved.stderr).toBe(0)
    expect(approved.stderr).toMatch(/wants token anthropic:default for get_token; \d+s left/)
    expect(approved.stderr).toContain("allowed once")
    expect(await client.frameWhere((f) => f.id === "first")).toMatchObject({ ok: true })

    client.send({ v: 1, id: "second", op: "get_api_key", payload: { name: "openai" } })
    await until(async () => (await waitingIds()).length === 1, { what: "the next use to wait" })
    const [id] = await waitingIds()
    const refused = await runCli(["approve", id!, "n", ...data()])
    expect(refused.code).toBe(0)
    expect(await client.frameWhere((f) => f.id === "second")).toMatchObject({
      code: "UNAUTHORIZED",
      error: "not confirmed on the host"
    })
    const none = await runCli(["approve", ...data()])
    expect(none.stderr).toContain("nothing is waiting for approval")
    expect((await runCli(["approve", "abc", ...data()])).code).toBe(2)
    expect((await server.stop()).code).toBe(0)
  })
})
