import * as fs from "node:fs"
import * as net from "node:net"
import * as path from "node:path"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type AuthServer, authServer } from "./support/auth-server.js"
import { type CliResult, runCli, type SpawnOptions, startServe, useCliWorkspace } from "./support/cli.js"

/**
 * `credproxy doctor` through the real binary (PROTOCOL.md §13, "doctor"):
 * a healthy set-up is all ok with exit 0; each broken set-up of issue 15
 * gives its fail line with the fix under it and exit 1, within 10 s. No
 * output ever holds a secret.
 */

const workspace = useCliWorkspace()

const ACCESS_TOKEN = "AT-doctor-5d1e2f"
const REFRESH_TOKEN = "RT-doctor-9a8b7c"
const CAPABILITY = "cap-doctor-0f1e2d3c4b5a"
const CLIENT_SECRET = "secret-doctor-77aa"
const SECRETS = [ACCESS_TOKEN, REFRESH_TOKEN, CAPABILITY, CLIENT_SECRET]

let auth: AuthServer
const scope = Effect.runSync(Scope.make())
beforeAll(async () => {
  auth = await Effect.runPromise(Scope.extend(authServer, scope))
})
afterAll(() => Effect.runPromise(Scope.close(scope, Exit.void)))

interface Line {
  readonly status: string
  readonly check: string
  readonly detail: string
  readonly fix?: string
}

/** The report's lines: `status  check  detail`, and `fix: ...` under a finding that is not ok. */
const findings = (stdout: string): Array<Line> => {
  const lines: Array<Line> = []
  for (const line of stdout.split("\n").slice(1)) {
    const found = /^(ok|warn|fail|skip)\s+(\S+(?: \S+)?)\s{2,}(.*)$/.exec(line)
    if (found !== null) lines.push({ status: found[1]!, check: found[2]!, detail: found[3]! })
    const fix = /^\s+fix: (.*)$/.exec(line)
    const last = lines[lines.length - 1]
    if (fix !== null && last !== undefined) lines[lines.length - 1] = { ...last, fix: fix[1]! }
  }
  return lines
}

/** Runs doctor, timing it: the whole run must stay within 10 s. */
const doctor = async (args: ReadonlyArray<string>, options: SpawnOptions = {}) => {
  const started = Date.now()
  const result = await runCli(["doctor", ...args], { timeoutMs: 15_000, ...options })
  const elapsedMs = Date.now() - started
  for (const secret of SECRETS) {
    expect(result.stdout).not.toContain(secret)
    expect(result.stderr).not.toContain(secret)
  }
  return { ...result, elapsedMs, lines: findings(result.stdout) }
}

const host = () => ["--data-dir", workspace.ws.dataDir, "--socket-dir", workspace.ws.socketDir]

/** The one fail line of `check`, with its fix; the run failed (exit 1) within 10 s. */
const expectFail = (
  run: CliResult & { readonly elapsedMs: number; readonly lines: Array<Line> },
  check: string,
  detail: RegExp,
  fix: RegExp
) => {
  expect(run.code, run.stdout + run.stderr).toBe(1)
  expect(run.elapsedMs).toBeLessThan(10_000)
  const line = run.lines.find((l) => l.check === check && l.status === "fail")
  expect(line, run.stdout).toBeDefined()
  expect(line?.detail).toMatch(detail)
  expect(line?.fix).toMatch(fix)
}

const importToken = async (expiresIn = 3600, refresh = true) => {
  const token = {
    access_token: ACCESS_TOKEN,
    ...(refresh ? { refresh_token: REFRESH_TOKEN } : {}),
    expiry: Math.floor(Date.now() / 1000) + expiresIn,
    token_type: "Bearer"
  }
  const result = await runCli(["token", "import", "anthropic", "--data-dir", workspace.ws.dataDir], {
    stdin: JSON.stringify(token)
  })
  expect(result.code).toBe(0)
}

const writeProviders = (entries: Record<string, Record<string, unknown>>, file = "providers.json") => {
  fs.mkdirSync(workspace.ws.dataDir, { recursive: true, mode: 0o700 })
  const at = path.join(workspace.ws.dataDir, file)
  fs.writeFileSync(at, JSON.stringify({ providers: entries }), { mode: 0o600 })
  return at
}

const capabilityFile = (token = CAPABILITY, name = "cap") => {
  const file = path.join(workspace.ws.root, name)
  fs.writeFileSync(file, `${token}\n`, { mode: 0o600 })
  return file
}

/** A healthy host: a stored token, a provider on a real authorization server, a running server. */
const healthy = async () => {
  await importToken()
  writeProviders({
    anthropic: { tokenEndpoint: auth.tokenEndpoint, clientId: "cli", clientSecret: CLIENT_SECRET },
    // Only an issuer: its token endpoint comes from the issuer's metadata.
    gemini: { issuer: auth.issuer, clientId: "cli" }
  })
  const cap = capabilityFile()
  const server = await startServe([...host(), "--allow", "anthropic", "--capability-token-file", cap])
  return { server, cap }
}

describe("credproxy doctor: a healthy set-up", () => {
  it("host side, with the socket and a provider: every check ok, exit 0", async () => {
    const { server, cap } = await healthy()
    const run = await doctor([...host(), "--socket", server.socketPath, "--provider", "anthropic"], {
      env: { LLXPRT_CAPABILITY_FILE: cap }
    })
    expect(run.code, run.stdout + run.stderr).toBe(0)
    expect(run.elapsedMs).toBeLessThan(10_000)
    expect(run.lines.map((l) => l.check)).toEqual([
      "node",
      "data-dir",
      "socket-dir",
      "socket-path",
      "peer-credentials",
      "providers",
      "provider anthropic",
      "provider gemini",
      "store",
      "token anthropic:default",
      "servers",
      "socket-variable",
      "socket-file",
      "capability-token",
      "connect",
      "handshake",
      "list-providers",
      "get-token"
    ])
    expect(run.lines.filter((l) => l.status !== "ok")).toEqual([])
    const byCheck = new Map(run.lines.map((l) => [l.check, l.detail]))
    expect(byCheck.get("provider anthropic")).toMatch(/answers as an OAuth token endpoint/)
    expect(byCheck.get("provider gemini")).toBe(
      `${auth.tokenEndpoint} answers as an OAuth token endpoint (HTTP 400 invalid_request)`
    )
    expect(byCheck.get("servers")).toContain(`pid ${server.pid} answers on ${server.socketPath}`)
    expect(byCheck.get("handshake")).toMatch(/protocol version 2, capability token accepted/)
    expect(run.stdout).toMatch(/All checks passed\.\n$/)
  })

  it("sandbox side (LLXPRT_CREDENTIAL_SOCKET set), --json: one JSON object, every step ok, exit 0", async () => {
    const { server, cap } = await healthy()
    const run = await doctor(["--json", "--provider", "anthropic"], {
      env: { LLXPRT_CREDENTIAL_SOCKET: server.socketPath, LLXPRT_CAPABILITY_FILE: cap }
    })
    expect(run.code, run.stdout + run.stderr).toBe(0)
    const report = JSON.parse(run.stdout) as { side: string; ok: boolean; checks: Array<Line> }
    expect(report.side).toBe("sandbox")
    expect(report.ok).toBe(true)
    expect(report.checks.map((c) => [c.check, c.status])).toEqual(
      [
        "socket-variable",
        "socket-file",
        "capability-token",
        "connect",
        "handshake",
        "list-providers",
        "get-token"
      ].map((check) => [check, "ok"])
    )
  })
})

describe("credproxy doctor: each broken set-up fails with its fix (exit 1, within 10 s)", () => {
  it("a socket directory with mode 0755", async () => {
    fs.mkdirSync(workspace.ws.socketDir, { mode: 0o755 })
    fs.chmodSync(workspace.ws.socketDir, 0o755)
    const run = await doctor(host())
    expectFail(run, "socket-dir", /has mode 755: group or others can reach the socket/, /^chmod 700 /)
  })

  it.skipIf(process.getuid?.() !== 0)("a socket directory owned by another uid (needs root)", async () => {
    fs.mkdirSync(workspace.ws.socketDir, { mode: 0o700 })
    fs.chownSync(workspace.ws.socketDir, 65534, 65534)
    const run = await doctor(host())
    expectFail(run, "socket-dir", /is owned by uid 65534, not by this user/, /remove it \(as its owner\)/)
  })

  it("a providers file with a bad endpoint", async () => {
    writeProviders({ anthropic: { tokenEndpoint: "http://auth.example.com/token", clientId: "cli" } })
    const run = await doctor(host())
    expectFail(
      run,
      "providers",
      /provider anthropic: field tokenEndpoint must be an https URL/,
      /correct the file/
    )
  })

  it("a token endpoint at a wrong path: HTTP 404", async () => {
    writeProviders({ anthropic: { tokenEndpoint: `${auth.issuer}/no-such-token`, clientId: "cli" } })
    const run = await doctor(host())
    expectFail(
      run,
      "provider anthropic",
      /answered HTTP 404: no token endpoint at this URL/,
      /correct tokenEndpoint/
    )
  })

  it("an unreachable token endpoint: connection refused", async () => {
    const closed = await freePort()
    writeProviders({ anthropic: { tokenEndpoint: `http://127.0.0.1:${closed}/token`, clientId: "cli" } })
    const run = await doctor(host())
    expectFail(
      run,
      "provider anthropic",
      /cannot reach http:\/\/127\.0\.0\.1:\d+\/token \(ECONNREFUSED\)/,
      /check the URL/
    )
  })

  it("a token endpoint that never answers: given up after 3 s, the run still within 10 s", async () => {
    const silent = net.createServer(() => {})
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve))
    try {
      const port = (silent.address() as net.AddressInfo).port
      writeProviders({ anthropic: { tokenEndpoint: `http://127.0.0.1:${port}/token`, clientId: "cli" } })
      const run = await doctor(host())
      expectFail(run, "provider anthropic", /did not answer within 3 s/, /reaches it/)
    } finally {
      silent.close()
    }
  })

  it("a dead socket path: the server was SIGKILLed", async () => {
    const server = await startServe(host())
    server.child.kill("SIGKILL")
    await server.exited
    expect(fs.existsSync(server.socketPath)).toBe(true)
    const sandbox = await doctor([], { env: { LLXPRT_CREDENTIAL_SOCKET: server.socketPath } })
    expectFail(sandbox, "connect", /ECONNREFUSED\): no proxy listens there/, /start the proxy again/)
    expect(sandbox.lines.find((l) => l.check === "handshake")?.status).toBe("skip")
    // On the host, its admin socket, left behind, says a server of this data directory is gone.
    const onHost = await doctor(host())
    expect(onHost.lines.find((l) => l.check === "servers")).toMatchObject({
      status: "warn",
      detail: expect.stringMatching(new RegExp(`pid ${server.pid} is gone without removing its admin socket`))
    })
  })

  it("a wrong capability token", async () => {
    const { server } = await healthy()
    const wrong = capabilityFile("not-the-proxys-token", "wrong")
    const run = await doctor([], {
      env: { LLXPRT_CREDENTIAL_SOCKET: server.socketPath, LLXPRT_CAPABILITY_FILE: wrong }
    })
    expectFail(run, "handshake", /refused the handshake \(UNAUTHORIZED/, /not this proxy's/)
    const none = await doctor([], { env: { LLXPRT_CREDENTIAL_SOCKET: server.socketPath } })
    expectFail(none, "handshake", /UNAUTHORIZED/, /requires a capability token/)
  })

  it("a socket path over the limit: on the host (socket directory) and in the sandbox (the variable)", async () => {
    const longDir = path.join(workspace.ws.root, "d".repeat(90))
    const onHost = await doctor(["--data-dir", workspace.ws.dataDir, "--socket-dir", longDir])
    expectFail(
      onHost,
      "socket-path",
      /bytes; Unix socket paths are limited to (107|103) bytes/,
      /shorter --socket-dir/
    )
    const inSandbox = await doctor([], { env: { LLXPRT_CREDENTIAL_SOCKET: path.join(longDir, "x.sock") } })
    expectFail(inSandbox, "socket-variable", /limited to (107|103) bytes/, /shorter --socket-dir/)
  })
})

describe("credproxy doctor: more of what goes wrong", () => {
  it("in a container without LLXPRT_CREDENTIAL_SOCKET: the variable is what fails", async () => {
    const run = await doctor([], { env: { container: "docker" } })
    expectFail(run, "socket-variable", /LLXPRT_CREDENTIAL_SOCKET is not set/, /-e LLXPRT_CREDENTIAL_SOCKET/)
  })

  it("a socket that accepts but never answers: the handshake is given up within its 2 s", async () => {
    const socketPath = path.join(workspace.ws.root, "mute.sock")
    const mute = net.createServer(() => {})
    await new Promise<void>((resolve) => mute.listen(socketPath, resolve))
    try {
      const run = await doctor([], { env: { LLXPRT_CREDENTIAL_SOCKET: socketPath } })
      expectFail(run, "handshake", /no answer to the handshake within the time doctor allows/, /proxy's log/)
    } finally {
      mute.close()
    }
  })

  it("a data directory others may write to", async () => {
    fs.mkdirSync(workspace.ws.dataDir, { mode: 0o777 })
    fs.chmodSync(workspace.ws.dataDir, 0o777)
    const run = await doctor(host())
    expectFail(run, "data-dir", /has mode 777: group or others may write to it/, /chmod 700 it/)
    expect(run.lines.find((l) => l.check === "store")?.status).toBe("skip")
  })

  it("a stored token that cannot be read, and an expired one that cannot be refreshed", async () => {
    await importToken(-600, false)
    const run = await doctor([...host(), "--provider", "anthropic"])
    expectFail(
      run,
      "token anthropic:default",
      /expired 10 min ago, and no refresh token is stored/,
      /credproxy token import anthropic/
    )
    const file = path.join(workspace.ws.dataDir, "tokens", "anthropic", "default.json")
    expect(fs.existsSync(file)).toBe(true)
    fs.writeFileSync(file, "{not json")
    const corrupt = await doctor(host())
    expectFail(
      corrupt,
      "store",
      /token anthropic:default: credential store failed to get: the stored value is not valid/,
      /store it again/
    )
  })

  it.skipIf(process.getuid?.() !== 0)("a sandbox process of another uid (needs root)", async () => {
    const server = await startServe(host())
    const run = await doctor([], {
      env: { LLXPRT_CREDENTIAL_SOCKET: server.socketPath },
      user: { uid: 65534, gid: 65534 }
    })
    expectFail(run, "socket-file", /uid 65534 may not look into the directory/, /run as the proxy's user/)
  })

  it("an invalid --provider name: exit 2 naming the option", async () => {
    const run = await doctor([...host(), "--provider", "../x"])
    expect(run.code).toBe(2)
    expect(run.stderr).toMatch(/invalid --provider "..\/x"/)
  })
})

const freePort = async (): Promise<number> => {
  const server = net.createServer()
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const port = (server.address() as net.AddressInfo).port
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

describe("doctor knows the servers of a data directory by their admin sockets", () => {
  const adminSockets = () => {
    const dir = path.join(workspace.ws.dataDir, "run")
    return fs.existsSync(dir) ? fs.readdirSync(dir).sort() : []
  }

  it("a running server answers on its admin socket and its sandbox socket; a stopped one leaves nothing", async () => {
    const server = await startServe(host())
    expect(adminSockets()).toEqual([`admin-${server.pid}.sock`])
    const run = await doctor(host())
    expect(run.lines.find((l) => l.check === "servers")).toMatchObject({
      status: "ok",
      detail: expect.stringContaining(`pid ${server.pid} answers on ${server.socketPath}`)
    })
    expect(await server.stop()).toEqual({ code: 0, signal: null })
    expect(adminSockets()).toEqual([])
    const none = await doctor(host())
    expect(none.lines.find((l) => l.check === "servers")).toMatchObject({ status: "ok" })
  })

  it("a killed server's admin socket stays until the next server on the data directory removes it", async () => {
    const killed = await startServe(host())
    killed.child.kill("SIGKILL")
    await killed.exited
    expect(adminSockets()).toEqual([`admin-${killed.pid}.sock`])
    const next = await startServe(host())
    expect(adminSockets()).toEqual([`admin-${next.pid}.sock`])
  })

  it("an admin socket that does not answer: a failure naming the pid, within the check's bound", async () => {
    // A process of ours that runs (this test's) but whose socket no server answers on.
    const dir = path.join(workspace.ws.dataDir, "run")
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 })
    // It reads (so it sees the client go) and never answers.
    const mute = net.createServer((connection) => connection.resume())
    const socket = path.join(dir, `admin-${process.pid}.sock`)
    await new Promise<void>((resolve) => mute.listen(socket, resolve))
    try {
      const run = await doctor(host())
      expect(run.elapsedMs).toBeLessThan(10_000)
      expect(run.lines.find((l) => l.check === "servers")).toMatchObject({
        status: "fail",
        detail: expect.stringMatching(
          new RegExp(`pid ${process.pid} runs but its admin socket .* does not answer`)
        ),
        fix: `stop it (kill ${process.pid}) and start the proxy again`
      })
    } finally {
      await new Promise<void>((resolve) => mute.close(() => resolve()))
    }
  })
})
