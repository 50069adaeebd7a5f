import * as fs from "node:fs"
import * as path from "node:path"
import * as lockfile from "proper-lockfile"
import { describe, expect, it } from "vitest"
import {
  type CliResult,
  listTree,
  runCli,
  type ServeProcess,
  serverStatus,
  startServe,
  useCliWorkspace,
  withTimeout
} from "./support/cli.js"
import { FrameClient, type Json } from "./support/frame-client.js"
import { poll, until } from "./support/until.js"

/**
 * The command line (PROTOCOL.md §2, §12, §13, §14) against the real bundled
 * binary: real processes, real signals, real sockets, real files.
 */

const SOCKET_NAME = /^llxprt-cred-(\d+)-([0-9a-f]{8})\.sock$/

// Secret values: each must be distinctive so that a search of the logs for it is meaningful.
const ACCESS_TOKEN = "at-SECRET-7f3a9c1e5b2d"
const REFRESH_TOKEN = "rt-SECRET-0c8e4a6f2b91"
const API_KEY = "sk-SECRET-key-d41d8cd98f00"

const fullToken = {
  access_token: ACCESS_TOKEN,
  refresh_token: REFRESH_TOKEN,
  expiry: 4_102_444_800,
  token_type: "Bearer",
  scope: "openid offline_access",
  account_id: "acct-42",
  resource_url: "https://resource.example.com"
}
const { refresh_token: _dropped, ...sanitizedToken } = fullToken

const workspace = useCliWorkspace()
const { clients } = workspace

const data = (): Array<string> => ["--data-dir", workspace.ws.dataDir]
const serveArgs = (...extra: Array<string>): Array<string> => [
  ...data(),
  "--socket-dir",
  workspace.ws.socketDir,
  ...extra
]

/** Runs a command with this test's data directory. */
const cli = (args: ReadonlyArray<string>, stdin = ""): Promise<CliResult> =>
  runCli([...args, ...data()], { stdin })

const open = async (server: ServeProcess): Promise<FrameClient> => {
  const client = await FrameClient.open(server.socketPath)
  clients.push(client)
  return client
}

const expectExit = (result: CliResult, code: number): void => {
  expect({ code: result.code, signal: result.signal, stderr: result.stderr }).toMatchObject({
    code,
    signal: null
  })
}

/** Imports a token and checks the import succeeded. */
const importToken = async (provider: string, token: unknown, bucket?: string): Promise<void> => {
  const args = ["token", "import", provider, ...(bucket === undefined ? [] : ["--bucket", bucket])]
  expectExit(await cli(args, JSON.stringify(token)), 0)
}

const setKey = async (name: string, input: string): Promise<void> => {
  expectExit(await cli(["key", "set", name], input), 0)
}

const lines = (text: string): Array<string> => text.split("\n").filter((line) => line !== "")

describe("credproxy serve: ready line, socket, stop (PROTOCOL.md §2, §13)", () => {
  it("prints exactly one ready line on stdout, with a private socket in a private directory", async () => {
    const server = await startServe(serveArgs())
    expect(server.ready).toEqual({
      event: "listening",
      socket: server.socketPath,
      pid: server.pid,
      protocolVersion: 2
    })
    // Field order as in §13, one compact line.
    expect(server.readyText).toBe(
      JSON.stringify({ event: "listening", socket: server.socketPath, pid: server.pid, protocolVersion: 2 })
    )

    expect(path.isAbsolute(server.socketPath)).toBe(true)
    expect(path.dirname(server.socketPath)).toBe(workspace.ws.socketDir)
    const name = SOCKET_NAME.exec(path.basename(server.socketPath))
    expect(name).not.toBeNull()
    expect(Number(name![1])).toBe(server.pid)

    const socketStat = fs.lstatSync(server.socketPath)
    expect(socketStat.isSocket()).toBe(true)
    expect(socketStat.mode & 0o777).toBe(0o600)
    const dirStat = fs.lstatSync(workspace.ws.socketDir)
    expect(dirStat.isDirectory()).toBe(true)
    expect(dirStat.mode & 0o777).toBe(0o700)

    // It serves, and serving writes nothing to stdout.
    const client = await open(server)
    expect(await client.request("list_providers")).toMatchObject({ ok: true, data: { providers: [] } })
    client.close()

    const exit = await server.stop("SIGTERM")
    expect(exit).toEqual({ code: 0, signal: null })
    // Over the whole life: the ready line and nothing else on stdout; logs on stderr.
    expect(server.stdout()).toBe(`${server.readyText}\n`)
    expect(server.stderr()).toMatch(/listening/)
  })

  it("two servers on the same socket directory get different socket files", async () => {
    const [a, b] = await Promise.all([startServe(serveArgs()), startServe(serveArgs())])
    expect(a.socketPath).not.toBe(b.socketPath)
    await Promise.all([a.stop(), b.stop()])
  })

  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    it(`${signal}: exit status 0, socket file removed, connections closed`, async () => {
      const server = await startServe(serveArgs())
      const client = await open(server)
      expect(await client.request("list_api_keys")).toMatchObject({ ok: true })

      const exit = await server.stop(signal)
      expect(exit).toEqual({ code: 0, signal: null })
      expect(fs.existsSync(server.socketPath)).toBe(false)
      await client.waitClosed()
      expect(server.stdout()).toBe(`${server.readyText}\n`)
    })
  }

  it("a second SIGTERM right after the first, with a connection open, still exits 0", async () => {
    const server = await startServe(serveArgs())
    const client = await open(server)
    expect(await client.request("list_providers")).toMatchObject({ ok: true })
    // Requests in flight while the signals arrive.
    for (let i = 0; i < 20; i++) client.send({ v: 1, id: `q${i}`, op: "list_providers", payload: {} })
    server.child.kill("SIGTERM")
    server.child.kill("SIGTERM")
    const exit = await withTimeout(server.exited, 10_000, "serve did not exit")
    expect(exit).toEqual({ code: 0, signal: null })
    expect(fs.existsSync(server.socketPath)).toBe(false)
    await client.waitClosed()
  })

  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    it(`${signal} repeated every millisecond until the process is gone never kills it: exit 0`, async () => {
      const server = await startServe(serveArgs())
      const client = await open(server)
      const alive = () => server.child.exitCode === null && server.child.signalCode === null
      server.child.kill(signal)
      const repeat = setInterval(() => {
        if (alive()) server.child.kill(signal)
      }, 1)
      try {
        const exit = await withTimeout(server.exited, 10_000, "serve did not exit")
        expect(exit).toEqual({ code: 0, signal: null })
      } finally {
        clearInterval(repeat)
      }
      expect(fs.existsSync(server.socketPath)).toBe(false)
      await client.waitClosed()
    })
  }

  /**
   * A request held in flight: another process holds the store's file lock on
   * the token (as a concurrent `token import` would), so `save_token` waits.
   */
  const requestInFlight = async () => {
    await importToken("anthropic", fullToken)
    const tokenFile = path.join(workspace.ws.dataDir, "tokens", "anthropic", "default.json")
    expect(fs.existsSync(tokenFile)).toBe(true)
    const release = await lockfile.lock(tokenFile, { realpath: false, stale: 10_000, update: 2_000 })
    const server = await startServe(serveArgs("--log-level", "debug", "--log-format", "json"))
    const client = await open(server)
    client.send({
      v: 1,
      id: "held",
      op: "save_token",
      payload: { provider: "anthropic", token: { access_token: "at-new", expiry: 1, token_type: "Bearer" } }
    })
    // The request reaches the lock and waits there: it cannot finish while we hold it.
    await until(async () => (await serverStatus(server)).requestsInFlight === 1, {
      what: "the request in flight"
    })
    expect(client.pending).toEqual([])
    return { server, client, release }
  }

  it("SIGTERM drains a request in flight: it is answered, then the server exits 0", async () => {
    const { server, client, release } = await requestInFlight()
    try {
      server.child.kill("SIGTERM")
      // Draining: the process waits for the request (up to 5 s) instead of exiting.
      await until(() => server.stderr().includes("draining requests in flight"), { what: "the drain" })
      expect(server.child.exitCode).toBeNull()
      expect(fs.existsSync(server.socketPath)).toBe(false)
    } finally {
      await release()
    }
    const answer = await client.frameWhere((frame) => frame.id === "held", 5_000)
    expect(answer).toMatchObject({ id: "held", ok: true })
    expect(await server.stop("SIGTERM")).toEqual({ code: 0, signal: null })
    await client.waitClosed()
    expect(server.stderr()).toContain("draining requests in flight")
  })

  it("a second SIGTERM during the drain stops at once, exit status 0", async () => {
    const { server, client, release } = await requestInFlight()
    try {
      server.child.kill("SIGTERM")
      await until(() => server.stderr().includes("draining requests in flight"), { what: "the drain" })
      expect(server.child.exitCode).toBeNull()
      const started = Date.now()
      server.child.kill("SIGTERM")
      expect(await server.stop("SIGTERM")).toEqual({ code: 0, signal: null })
      // Well before the 5 s drain deadline.
      expect(Date.now() - started).toBeLessThan(2_500)
      expect(fs.existsSync(server.socketPath)).toBe(false)
      await client.waitClosed()
    } finally {
      await release()
    }
  })

  it("without --socket-dir: a 0700 directory llxprt-cred-{uid} in the temp dir", async () => {
    const server = await startServe(data(), { env: { TMPDIR: workspace.ws.root } })
    const expectedDir = path.join(workspace.ws.root, `llxprt-cred-${process.getuid!()}`)
    expect(path.dirname(server.socketPath)).toBe(expectedDir)
    expect(fs.lstatSync(expectedDir).mode & 0o777).toBe(0o700)
    expect(fs.lstatSync(server.socketPath).mode & 0o777).toBe(0o600)
    expect(await server.stop("SIGINT")).toEqual({ code: 0, signal: null })
    expect(fs.readdirSync(expectedDir)).toEqual([])
  })

  it("--max-connections 1: an excess connection is closed at once without a frame", async () => {
    const server = await startServe(serveArgs("--max-connections", "1"))
    const first = await open(server)
    const second = await FrameClient.connect(server.socketPath)
    clients.push(second)
    await second.waitClosed()
    expect(second.pending).toEqual([])
    expect(await first.request("list_providers")).toMatchObject({ ok: true })
    expect(server.stderr()).toMatch(/too many connections/)
    expect(await server.stop()).toEqual({ code: 0, signal: null })
  })

  it("--rate-limit 2: the excess of a burst gets RATE_LIMITED with 0 < retryAfter <= 1", async () => {
    const server = await startServe(serveArgs("--rate-limit", "2"))
    const client = await open(server)
    const answers = await Promise.all(Array.from({ length: 6 }, () => client.request("list_providers")))
    const limited = answers.filter((answer) => answer.code === "RATE_LIMITED")
    expect(answers.filter((answer) => answer.ok === true).length).toBeGreaterThanOrEqual(1)
    expect(limited.length).toBeGreaterThanOrEqual(3)
    for (const answer of limited) {
      expect(answer.retryAfter).toBeGreaterThan(0)
      expect(answer.retryAfter).toBeLessThanOrEqual(1)
    }
    expect(await server.stop()).toEqual({ code: 0, signal: null })
  })
})

/** `get_token` over the socket, for polling. */
const getToken = (client: FrameClient, provider: string, bucket?: string): Promise<Json> =>
  client.request("get_token", bucket === undefined ? { provider } : { provider, bucket })

describe("credproxy token (PROTOCOL.md §7, §13)", () => {
  it("import, then a running server serves it sanitized; show, list, remove", async () => {
    await importToken("anthropic", fullToken)
    await importToken("anthropic", { ...fullToken, account_id: "acct-work" }, "work")

    const server = await startServe(serveArgs())
    const client = await open(server)

    const got = await getToken(client, "anthropic")
    expect(got).toMatchObject({ v: 1, ok: true })
    expect(got.data).toEqual(sanitizedToken)
    expect(got.data).not.toHaveProperty("refresh_token")
    const work = await getToken(client, "anthropic", "work")
    expect(work.data).toEqual({ ...sanitizedToken, account_id: "acct-work" })

    // show: sanitized unless --reveal.
    const shown = await cli(["token", "show", "anthropic"])
    expectExit(shown, 0)
    expect(JSON.parse(shown.stdout)).toEqual(sanitizedToken)
    expect(shown.stdout).not.toContain(REFRESH_TOKEN)
    const revealed = await cli(["token", "show", "anthropic", "--reveal"])
    expectExit(revealed, 0)
    expect(JSON.parse(revealed.stdout)).toEqual(fullToken)
    const shownWork = await cli(["token", "show", "anthropic", "--bucket", "work"])
    expect(JSON.parse(shownWork.stdout)).toEqual({ ...sanitizedToken, account_id: "acct-work" })

    // list: one provider:bucket a line.
    const listed = await cli(["token", "list"])
    expectExit(listed, 0)
    expect(lines(listed.stdout).sort()).toEqual(["anthropic:default", "anthropic:work"])

    // remove: the running server sees it gone within 1 s (polled for up to 3 s).
    expectExit(await cli(["token", "remove", "anthropic"]), 0)
    const gone = await poll(
      () => getToken(client, "anthropic"),
      (reply) => reply.ok === false,
      { limitMs: 3_000, intervalMs: 50 }
    )
    expect(gone.value).toMatchObject({ ok: false, code: "NOT_FOUND" })
    expect(gone.elapsedMs).toBeLessThan(1_500)
    expect((await getToken(client, "anthropic", "work")).ok).toBe(true)
    expect(lines((await cli(["token", "list"])).stdout)).toEqual(["anthropic:work"])

    // An import by another process while the server runs is visible within 1 s too.
    await importToken("gemini", { access_token: "g-1", expiry: 1, token_type: "Bearer" })
    const appeared = await poll(
      () => getToken(client, "gemini"),
      (reply) => reply.ok === true,
      { limitMs: 3_000, intervalMs: 50 }
    )
    expect(appeared.value.data).toEqual({ access_token: "g-1", expiry: 1, token_type: "Bearer" })
    expect(appeared.elapsedMs).toBeLessThan(1_500)

    expect((await server.stop()).code).toBe(0)
  })

  it("a missing token: show and remove exit 1", async () => {
    const shown = await cli(["token", "show", "nobody"])
    expectExit(shown, 1)
    expect(shown.stdout).toBe("")
    expect(shown.stderr).toMatch(/not found/i)
    const removed = await cli(["token", "remove", "nobody", "--bucket", "b"])
    expectExit(removed, 1)
    expect(removed.stderr).toMatch(/not found/i)
  })

  const malformed: ReadonlyArray<[string, string, RegExp]> = [
    ["not JSON", "this is not json", /JSON/],
    ["empty input", "", /JSON/],
    [
      "empty access_token",
      JSON.stringify({ access_token: "", expiry: 1, token_type: "Bearer" }),
      /access_token/
    ],
    ["missing expiry", JSON.stringify({ access_token: "a", token_type: "Bearer" }), /expiry/],
    [
      "expiry not a number",
      JSON.stringify({ access_token: "a", expiry: "soon", token_type: "Bearer" }),
      /expiry/
    ],
    ["missing token_type", JSON.stringify({ access_token: "a", expiry: 1 }), /token_type/],
    ["a JSON array", JSON.stringify([fullToken]), /token/]
  ]
  for (const [name, input, mentions] of malformed) {
    it(`import of a malformed token (${name}): exit 2 with a message, nothing stored`, async () => {
      const result = await cli(["token", "import", "anthropic"], input)
      expectExit(result, 2)
      expect(result.stderr).toMatch(mentions)
      expect(result.stdout).toBe("")
      const listed = await cli(["token", "list"])
      expectExit(listed, 0)
      expect(listed.stdout).toBe("")
    })
  }

  it("bad names are refused with the rule, and nothing is written outside the data directory", async () => {
    const attempts: ReadonlyArray<ReadonlyArray<string>> = [
      ["token", "import", "../etc"],
      ["token", "import", "anthropic", "--bucket", "../../escape"],
      ["token", "import", ".hidden"],
      ["token", "import", "a/b"],
      ["token", "show", "../etc"],
      ["token", "remove", "../etc"]
    ]
    for (const args of attempts) {
      const result = await cli(args, JSON.stringify(fullToken))
      expectExit(result, 2)
      expect(result.stderr).toContain("A-Z a-z 0-9 . _ - @ +")
    }
    // Only the data directory may exist under the workspace, and it holds no token.
    expect(fs.readdirSync(workspace.ws.root).filter((entry) => entry !== "data")).toEqual([])
    expect(listTree(workspace.ws.dataDir).filter((entry) => entry.endsWith(".json"))).toEqual([])
    expect((await cli(["token", "list"])).stdout).toBe("")
  })
})

describe("credproxy key (PROTOCOL.md §13, §14)", () => {
  it("set drops one trailing newline; list; get_api_key and has_api_key over the socket; remove", async () => {
    await setKey("openai", `${API_KEY}\n`)
    await setKey("two-newlines", "value\n\n")
    await setKey("no-newline", "plain")

    const listed = await cli(["key", "list"])
    expectExit(listed, 0)
    expect(lines(listed.stdout).sort()).toEqual(["no-newline", "openai", "two-newlines"])
    expect(listed.stdout).not.toContain(API_KEY)

    const server = await startServe(serveArgs())
    const client = await open(server)
    expect(await client.request("get_api_key", { name: "openai" })).toMatchObject({
      ok: true,
      data: { key: API_KEY }
    })
    expect((await client.request("get_api_key", { name: "two-newlines" })).data).toEqual({ key: "value\n" })
    expect((await client.request("get_api_key", { name: "no-newline" })).data).toEqual({ key: "plain" })
    expect(await client.request("has_api_key", { name: "openai" })).toMatchObject({
      ok: true,
      data: { exists: true }
    })
    expect(await client.request("has_api_key", { name: "absent" })).toMatchObject({
      ok: true,
      data: { exists: false }
    })

    expectExit(await cli(["key", "remove", "openai"]), 0)
    const gone = await poll(
      () => client.request("get_api_key", { name: "openai" }),
      (reply) => reply.ok === false,
      { limitMs: 3_000, intervalMs: 50 }
    )
    expect(gone.value).toMatchObject({ ok: false, code: "NOT_FOUND" })
    expect(gone.elapsedMs).toBeLessThan(1_500)
    expect(lines((await cli(["key", "list"])).stdout).sort()).toEqual(["no-newline", "two-newlines"])

    expect((await server.stop()).code).toBe(0)
  })

  for (const [name, input] of [
    ["empty stdin", ""],
    ["only a newline", "\n"]
  ] as const) {
    it(`set with ${name}: exit 2, nothing stored`, async () => {
      const result = await cli(["key", "set", "openai"], input)
      expectExit(result, 2)
      expect(result.stderr).not.toBe("")
      const listed = await cli(["key", "list"])
      expectExit(listed, 0)
      expect(listed.stdout).toBe("")
    })
  }

  it("set of a key over 64 KiB: exit 2, nothing stored; 64 KiB exactly is stored and served on v2", async () => {
    const result = await cli(["key", "set", "big"], "k".repeat(65_537))
    expectExit(result, 2)
    expect(result.stderr).toContain("key too large: at most 65536 bytes")
    expect((await cli(["key", "list"])).stdout).toBe("")
    expectExit(await cli(["key", "set", "big"], "k".repeat(65_536)), 0)
    const server = await startServe(serveArgs())
    // Its answer is over version 1's 64 KiB frame: served on version 2 (§20).
    const client = await FrameClient.open(server.socketPath, { minVersion: 1, maxVersion: 2 })
    workspace.clients.push(client)
    expect((await client.request("get_api_key", { name: "big" })).data.key).toHaveLength(65_536)
    expect((await server.stop()).code).toBe(0)
  })

  it("set with a bad name: exit 2, nothing written outside the data directory", async () => {
    const result = await cli(["key", "set", "../evil"], API_KEY)
    expectExit(result, 2)
    expect(result.stderr).toContain("A-Z a-z 0-9 . _ - @ +")
    expect(fs.readdirSync(workspace.ws.root).filter((entry) => entry !== "data")).toEqual([])
  })

  it("remove of a missing key: exit 1", async () => {
    const result = await cli(["key", "remove", "nothing"])
    expectExit(result, 1)
    expect(result.stderr).toMatch(/not found/i)
  })
})

describe("bad arguments: exit 2 with a message (PROTOCOL.md §13, §14)", () => {
  const cases: ReadonlyArray<[string, ReadonlyArray<string>, RegExp]> = [
    ["unknown command", ["frobnicate"], /frobnicate|subcommand|command/i],
    ["unknown option", ["serve", "--frobnicate"], /frobnicate/],
    ["--rate-limit abc", ["serve", "--rate-limit", "abc"], /abc/],
    ["--rate-limit -1", ["serve", "--rate-limit", "-1"], /rate-limit/],
    ["--allow a:b:c", ["serve", "--allow", "a:b:c"], /a:b:c/],
    ["--allow-key with * inside a name", ["serve", "--allow-key", "OPENAI*"], /OPENAI\*/],
    ["--allow with * inside a name", ["serve", "--allow", "anth*"], /anth\*/],
    ["--log-level loud", ["serve", "--log-level", "loud"], /error, warn, info, debug, trace/],
    // Values @effect/cli's own built-in --log-level knows, but §13's does not.
    ["--log-level none", ["serve", "--log-level", "none"], /error, warn, info, debug, trace/],
    ["--log-level warning", ["serve", "--log-level", "warning"], /error, warn, info, debug, trace/],
    ["--max-connections -1", ["serve", "--max-connections", "-1"], /max-connections/],
    ["--allow-uid abc", ["serve", "--allow-uid", "abc"], /abc/]
  ]
  for (const [name, args, mentions] of cases) {
    it(name, async () => {
      // A bad argument must fail at once; a serve that starts anyway is killed after 5 s.
      const result = await runCli([...args, ...serveArgs()], { timeoutMs: 5_000 })
      expectExit(result, 2)
      expect(result.stdout).toBe("")
      expect(result.stderr).toMatch(mentions)
    })
  }

  const tokenCases: ReadonlyArray<[string, ReadonlyArray<string>, RegExp]> = [
    ["token import without PROVIDER", ["token", "import"], /PROVIDER/],
    ["token with an unknown subcommand", ["token", "frobnicate"], /frobnicate|subcommand/i],
    ["key set with an unknown option", ["key", "set", "k", "--frobnicate"], /frobnicate/]
  ]
  for (const [name, args, mentions] of tokenCases) {
    it(name, async () => {
      const result = await runCli([...args, ...data()], { stdin: "x" })
      expectExit(result, 2)
      expect(result.stdout).toBe("")
      expect(result.stderr).toMatch(mentions)
    })
  }

  it("--socket-dir with mode 0755: refused, naming the mode", async () => {
    fs.mkdirSync(workspace.ws.socketDir, { mode: 0o755 })
    fs.chmodSync(workspace.ws.socketDir, 0o755)
    const result = await runCli(["serve", ...serveArgs()])
    expectExit(result, 2)
    expect(result.stdout).toBe("")
    expect(result.stderr).toMatch(/mode/)
    expect(result.stderr).toMatch(/755/)
    expect(fs.readdirSync(workspace.ws.socketDir)).toEqual([])
  })

  it("--socket-dir that is a symlink to a private directory: refused", async () => {
    const real = path.join(workspace.ws.root, "real")
    fs.mkdirSync(real, { mode: 0o700 })
    fs.symlinkSync(real, workspace.ws.socketDir)
    const result = await runCli(["serve", ...serveArgs()])
    expectExit(result, 2)
    expect(result.stdout).toBe("")
    expect(result.stderr).toMatch(/symbolic link|symlink/)
    expect(fs.readdirSync(real)).toEqual([])
  })

  it("a socket path longer than the limit: refused, naming the limit", async () => {
    const longDir = path.join(workspace.ws.root, "d".repeat(100))
    const result = await runCli(["serve", ...data(), "--socket-dir", longDir])
    expectExit(result, 2)
    expect(result.stdout).toBe("")
    expect(result.stderr).toMatch(/107|104|103/)
    expect(result.stderr).toMatch(/limit/i)
  })
})

/** The object (the entry itself or one nested in it) that carries a request's `op`: wherever the logger put the fields. */
const requestFields = (value: Json): Json | undefined => {
  if (typeof value !== "object" || value === null) return undefined
  if (!Array.isArray(value) && typeof value.op === "string") return value
  for (const inner of Object.values(value)) {
    const found = requestFields(inner)
    if (found !== undefined) return found
  }
  return undefined
}

describe("logging (PROTOCOL.md §12, §14)", () => {
  it("--log-format json --log-level debug: one JSON object per stderr line, per-request lines, no secrets", async () => {
    await importToken("anthropic", fullToken)
    await setKey("openai", `${API_KEY}\n`)

    const server = await startServe(serveArgs("--log-format", "json", "--log-level", "debug"))
    const client = await open(server)
    expect((await getToken(client, "anthropic")).data).toEqual(sanitizedToken)
    expect(await client.request("get_api_key", { name: "openai" })).toMatchObject({ data: { key: API_KEY } })
    expect(await client.request("has_api_key", { name: "openai" })).toMatchObject({ data: { exists: true } })
    expect(await getToken(client, "missing")).toMatchObject({ ok: false, code: "NOT_FOUND" })
    expect(
      await client.request("save_token", {
        provider: "anthropic",
        bucket: "saved",
        token: { ...fullToken, access_token: `${ACCESS_TOKEN}-2` }
      })
    ).toMatchObject({ ok: true })
    // refresh_token with no providers configured: an error path, still no secret in the log.
    expect(await client.request("refresh_token", { provider: "anthropic" })).toMatchObject({ ok: false })
    expect(await client.request("get_token", { provider: "../etc" })).toMatchObject({
      ok: false,
      code: "INVALID_REQUEST"
    })
    client.close()

    expect((await server.stop()).code).toBe(0)
    const stderr = server.stderr()
    const stderrLines = stderr.split("\n")
    expect(stderrLines.pop()).toBe("")
    const entries = stderrLines.map((line) => {
      const parsed: unknown = JSON.parse(line)
      expect(typeof parsed === "object" && parsed !== null && !Array.isArray(parsed)).toBe(true)
      return parsed as Json
    })
    const requests = entries.map(requestFields).filter((fields) => fields !== undefined)
    const logged = (op: string, outcome: string) =>
      requests.filter((fields) => fields.op === op && fields.outcome === outcome)
    expect(logged("get_token", "ok")).toEqual([
      expect.objectContaining({ provider: "anthropic", bucket: "default" })
    ])
    expect(logged("get_token", "NOT_FOUND")).toEqual([expect.objectContaining({ provider: "missing" })])
    expect(logged("get_api_key", "ok")).toHaveLength(1)
    expect(logged("has_api_key", "ok")).toHaveLength(1)
    expect(logged("save_token", "ok")).toEqual([
      expect.objectContaining({ provider: "anthropic", bucket: "saved" })
    ])
    expect(requests.filter((fields) => fields.op === "refresh_token")).toHaveLength(1)
    // Every request line carries a duration.
    for (const fields of requests) expect(Object.keys(fields).some((key) => /duration/i.test(key))).toBe(true)

    for (const secret of [ACCESS_TOKEN, REFRESH_TOKEN, API_KEY]) expect(stderr).not.toContain(secret)
    expect(server.stdout()).toBe(`${server.readyText}\n`)
  })
})

describe("--log-level is honoured wherever it stands (PROTOCOL.md §13)", () => {
  /** Runs serve with `args`, makes two requests, stops it; the parsed stderr lines. */
  const logOf = async (args: ReadonlyArray<string>): Promise<Array<Json>> => {
    const server = await startServe(args)
    const client = await open(server)
    expect(await client.request("list_providers")).toMatchObject({ ok: true })
    expect(await client.request("has_api_key", { name: "x" })).toMatchObject({ ok: true })
    client.close()
    expect(await server.stop()).toEqual({ code: 0, signal: null })
    return lines(server.stderr()).map((line) => JSON.parse(line) as Json)
  }
  const levelOf = (entry: Json): string => String(entry.logLevel ?? entry.level ?? "").toUpperCase()
  const hasRequestLine = (entries: ReadonlyArray<Json>): boolean =>
    entries.some((entry) => requestFields(entry)?.op === "list_providers")

  for (const [where, build] of [
    ["first", (level: string) => ["--log-level", level, "--log-format", "json", ...serveArgs()]],
    ["last", (level: string) => ["--log-format", "json", ...serveArgs(), "--log-level", level]],
    [
      "as --log-level=X, first",
      (level: string) => [`--log-level=${level}`, "--log-format", "json", ...serveArgs()]
    ]
  ] as const) {
    it(`${where}: debug logs each request, error logs no info`, async () => {
      const debug = await logOf(build("debug"))
      expect(hasRequestLine(debug)).toBe(true)
      const quiet = await logOf(build("error"))
      expect(quiet.filter((entry) => ["INFO", "DEBUG", "TRACE"].includes(levelOf(entry)))).toEqual([])
      expect(hasRequestLine(quiet)).toBe(false)
    })
  }
})

describe("access policy from the command line (PROTOCOL.md §8, §14)", () => {
  it("--allow anthropic:work --allow-key openai", async () => {
    await importToken("anthropic", fullToken)
    await importToken("anthropic", fullToken, "work")
    await importToken("gemini", fullToken)
    await setKey("openai", "sk-openai")
    await setKey("mistral", "sk-mistral")

    const server = await startServe(serveArgs("--allow", "anthropic:work", "--allow-key", "openai"))
    const client = await open(server)
    expect(await getToken(client, "anthropic")).toMatchObject({ ok: false, code: "UNAUTHORIZED" })
    expect(await getToken(client, "gemini")).toMatchObject({ ok: false, code: "UNAUTHORIZED" })
    expect((await getToken(client, "anthropic", "work")).data).toEqual(sanitizedToken)
    expect(await client.request("list_api_keys")).toMatchObject({ ok: true, data: { keys: ["openai"] } })
    expect(await client.request("get_api_key", { name: "mistral" })).toMatchObject({
      ok: false,
      code: "UNAUTHORIZED"
    })
    expect(await client.request("list_providers")).toMatchObject({
      ok: true,
      data: { providers: ["anthropic"] }
    })
    expect(await client.request("list_buckets", { provider: "anthropic" })).toMatchObject({
      ok: true,
      data: { buckets: ["work"] }
    })
    expect((await server.stop()).code).toBe(0)
  })
})

describe("data directory (PROTOCOL.md §13)", () => {
  it("is created 0700 with files 0600", async () => {
    await importToken("anthropic", fullToken, "work")
    await setKey("openai", API_KEY)
    expect(fs.statSync(workspace.ws.dataDir).mode & 0o777).toBe(0o700)
    const entries = listTree(workspace.ws.dataDir)
    expect(entries.length).toBeGreaterThan(0)
    for (const entry of entries) {
      const stat = fs.statSync(path.join(workspace.ws.dataDir, entry))
      expect({ entry, mode: (stat.mode & 0o777).toString(8) }).toEqual({
        entry,
        mode: stat.isDirectory() ? "700" : "600"
      })
    }
  })

  it("falls back to $CREDPROXY_HOME, then $XDG_DATA_HOME/credproxy", async () => {
    const home = path.join(workspace.ws.root, "home")
    const xdg = path.join(workspace.ws.root, "xdg")
    const token = JSON.stringify(fullToken)
    expectExit(
      await runCli(["token", "import", "viahome"], { stdin: token, env: { CREDPROXY_HOME: home } }),
      0
    )
    expectExit(await runCli(["token", "import", "viaxdg"], { stdin: token, env: { XDG_DATA_HOME: xdg } }), 0)
    const listHome = await runCli(["token", "list"], { env: { CREDPROXY_HOME: home, XDG_DATA_HOME: xdg } })
    expect(lines(listHome.stdout)).toEqual(["viahome:default"])
    const listXdg = await runCli(["token", "list"], { env: { XDG_DATA_HOME: xdg } })
    expect(lines(listXdg.stdout)).toEqual(["viaxdg:default"])
    expect(fs.existsSync(path.join(xdg, "credproxy"))).toBe(true)
    // --data-dir wins over both.
    const listFlag = await runCli(["token", "list", ...data()], {
      env: { CREDPROXY_HOME: home, XDG_DATA_HOME: xdg }
    })
    expectExit(listFlag, 0)
    expect(listFlag.stdout).toBe("")
  })
})

describe("help", () => {
  it("--help exits 0 and names the commands", async () => {
    const result = await runCli(["--help"])
    expectExit(result, 0)
    for (const command of ["serve", "token", "key"]) expect(result.stdout).toContain(command)
  })
})
