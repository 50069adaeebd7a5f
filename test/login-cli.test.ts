import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { type AuthServer, authServerWith, REDIRECT_URI } from "./support/auth-server.js"
import {
  BIN,
  type RunningCli,
  runCli,
  startCli,
  startProcess,
  startServe,
  useCliWorkspace
} from "./support/cli.js"
import { FrameClient } from "./support/frame-client.js"
import { loginProvider, providersFileFor, refreshesOnHost, storedToken } from "./support/login.js"
import { portOpen } from "./support/loopback.js"
import { until } from "./support/until.js"

/**
 * `credproxy login` (PROTOCOL.md §17) as a user runs it: the real binary,
 * the real authorization server on loopback, its pages driven as a browser
 * would from what the command prints on stderr. After each flow: one JSON
 * line on stdout, the token served by `serve`, and `token refresh` working
 * with the refresh token the login stored.
 */

const workspace = useCliWorkspace()
const promise = <A>(f: () => Promise<A>) => Effect.promise(f)

const ERASE_LINE = "\u001b\\[K"

const providersFile = () => path.join(workspace.ws.root, "providers.json")

const login = (args: ReadonlyArray<string>, env: Readonly<Record<string, string>> = {}): RunningCli =>
  startCli(["login", ...args, "--data-dir", workspace.ws.dataDir, "--providers", providersFile()], { env })

/** The command ended 0 and printed exactly one JSON line on stdout: what it says. */
const loggedInLine = (cli: RunningCli, bucket = "default") =>
  promise(async () => {
    const { code } = await cli.exited
    expect({ code, stderr: cli.stderr() }).toMatchObject({ code: 0 })
    expect(cli.stdout().endsWith("\n")).toBe(true)
    const lines = cli.stdout().trimEnd().split("\n")
    expect(lines).toHaveLength(1)
    const line = JSON.parse(lines[0] ?? "")
    expect(line).toEqual({ event: "logged_in", provider: "oidc", bucket, expiresAt: expect.any(Number) })
    expect(line.expiresAt).toBeGreaterThan(Date.now() + 3_000_000)
    // No spinner without a terminal.
    expect(cli.stderr()).not.toContain("\r")
    return line
  })

/** `serve` on the same data directory answers the stored access token to a client. */
const servedByServe = (auth: AuthServer) =>
  Effect.gen(function* () {
    const stored = yield* storedToken(workspace.ws.dataDir, "oidc")
    const serve = yield* promise(() =>
      startServe([
        "--data-dir",
        workspace.ws.dataDir,
        "--socket-dir",
        workspace.ws.socketDir,
        "--providers",
        providersFile()
      ])
    )
    const client = yield* promise(() => FrameClient.open(serve.socketPath))
    workspace.clients.push(client)
    const reply = yield* promise(() => client.request("get_token", { provider: "oidc" }))
    expect(reply).toMatchObject({ ok: true, data: { access_token: stored?.access_token } })
    expect(reply.data).not.toHaveProperty("refresh_token")
    expect(yield* promise(() => auth.userinfoStatus(reply.data.access_token))).toBe(200)
    expect((yield* promise(() => serve.stop())).code).toBe(0)
  })

describe("credproxy providers add (issuer metadata)", () => {
  it.scopedLive(
    "writes the entry (0600, other entries kept) with device_code when the issuer offers it",
    () =>
      Effect.gen(function* () {
        const auth = yield* authServerWith({})
        fs.writeFileSync(
          providersFile(),
          JSON.stringify({
            providers: { other: { tokenEndpoint: "https://other.example/token", clientId: "o" } }
          })
        )
        const added = yield* promise(() =>
          runCli([
            "providers",
            "add",
            "oidc",
            "--issuer",
            auth.issuer,
            "--client-id",
            "login",
            "--scope",
            "openid",
            "--scope",
            "offline_access",
            "--data-dir",
            workspace.ws.dataDir,
            "--providers",
            providersFile()
          ])
        )
        expect({ code: added.code, stderr: added.stderr }).toMatchObject({ code: 0, stderr: "" })
        expect(JSON.parse(added.stdout)).toEqual({
          event: "provider_added",
          provider: "oidc",
          flow: "device_code",
          file: providersFile()
        })
        expect(fs.statSync(providersFile()).mode & 0o777).toBe(0o600)
        expect(JSON.parse(fs.readFileSync(providersFile(), "utf8")).providers).toEqual({
          other: { tokenEndpoint: "https://other.example/token", clientId: "o" },
          oidc: {
            issuer: auth.issuer,
            clientId: "login",
            scopes: ["openid", "offline_access"],
            login: { flow: "device_code" }
          }
        })
        const listed = yield* promise(() =>
          runCli(["providers", "list", "--data-dir", workspace.ws.dataDir, "--providers", providersFile()])
        )
        expect(listed.stdout).toBe("oidc\nother\n")
      })
  )

  it.scopedLive(
    "chooses browser_redirect when the issuer has no device endpoint; says what is missing otherwise",
    () =>
      Effect.gen(function* () {
        const auth = yield* authServerWith({ deviceFlow: false })
        const add = (...extra: Array<string>) =>
          promise(() =>
            runCli([
              "providers",
              "add",
              "web",
              "--issuer",
              auth.issuer,
              "--client-id",
              "login",
              ...extra,
              "--data-dir",
              workspace.ws.dataDir
            ])
          )
        const chosen = yield* add()
        expect(chosen.code).toBe(0)
        expect(JSON.parse(chosen.stdout)).toMatchObject({ flow: "browser_redirect" })
        // The default file, in the data directory.
        const file = path.join(workspace.ws.dataDir, "providers.json")
        expect(JSON.parse(fs.readFileSync(file, "utf8")).providers.web.login).toEqual({
          flow: "browser_redirect"
        })
        const before = fs.readFileSync(file, "utf8")

        const device = yield* add("--flow", "device_code")
        expect(device.code).toBe(2)
        expect(device.stderr).toContain(
          `the metadata of ${auth.issuer} cannot be used: it has no device_authorization_endpoint`
        )
        const pkce = yield* add("--flow", "pkce_redirect")
        expect(pkce.code).toBe(2)
        expect(pkce.stderr).toContain("redirect URI (give --redirect-uri)")
        const wrong = yield* add("--flow", "browser_redirect", "--redirect-uri", REDIRECT_URI)
        expect(wrong).toMatchObject({
          code: 2,
          stderr: expect.stringContaining("only for --flow pkce_redirect")
        })
        const withUri = yield* add("--redirect-uri", REDIRECT_URI)
        expect(JSON.parse(withUri.stdout)).toMatchObject({ flow: "pkce_redirect" })
        expect(JSON.parse(fs.readFileSync(file, "utf8")).providers.web.login).toEqual({
          flow: "pkce_redirect",
          redirectUri: REDIRECT_URI
        })
        expect(before).not.toBe(fs.readFileSync(file, "utf8"))
      })
  )

  it("an issuer whose metadata cannot be fetched: exit 2 saying why, nothing written", async () => {
    const result = await runCli([
      "providers",
      "add",
      "gone",
      "--issuer",
      "http://127.0.0.1:9/",
      "--client-id",
      "c",
      "--data-dir",
      workspace.ws.dataDir,
      "--providers",
      providersFile()
    ])
    expect(result.code).toBe(2)
    expect(result.stderr).toContain("the metadata of http://127.0.0.1:9/ cannot be used: Network")
    expect(fs.existsSync(providersFile())).toBe(false)
    const insecure = await runCli([
      "providers",
      "add",
      "x",
      "--issuer",
      "http://auth.example.com",
      "--client-id",
      "c"
    ])
    expect(insecure).toMatchObject({
      code: 2,
      stderr: expect.stringContaining("--issuer must be an https URL")
    })
  })
})

describe("credproxy login (real OAuth 2.0 server on loopback)", () => {
  it.scopedLive(
    "device_code: instructions on stderr, the user enters the code, one JSON line on stdout",
    () =>
      Effect.gen(function* () {
        const auth = yield* authServerWith({ deviceInterval: 1 })
        const provider = loginProvider(auth)
        providersFileFor(providersFile(), [provider])
        const cli = login(["oidc"])
        const [, uri, code] = yield* promise(() =>
          cli.waitForStderr(/To log in to oidc, open (\S+) and enter the code ([A-Z]{4}-[A-Z]{4})/)
        )
        expect(cli.stderr()).toContain("which has the code in it")
        expect(cli.stderr()).toContain("Ctrl-C cancels")
        yield* promise(() => auth.browse(uri ?? "", { userCode: code ?? "" }))
        yield* loggedInLine(cli)
        yield* servedByServe(auth)
        yield* refreshesOnHost(workspace.ws.dataDir, auth, provider)
      })
  )

  it.scopedLive("pkce_redirect: the user pastes CODE#STATE on stdin", () =>
    Effect.gen(function* () {
      const auth = yield* authServerWith({})
      const provider = loginProvider(auth, { flow: "pkce_redirect", redirectUri: REDIRECT_URI })
      providersFileFor(providersFile(), [provider])
      const cli = login(["oidc", "--bucket", "work"])
      const [, url] = yield* promise(() =>
        cli.waitForStderr(/open this URL in a browser and log in:\n {2}(\S+)\n/)
      )
      yield* promise(() => cli.waitForStderr(/Paste it here and press Enter:/))
      const back = new URL(
        (yield* promise(() => auth.browse(url ?? "", { stopAt: (at) => at.startsWith(REDIRECT_URI) }))) ?? ""
      )
      cli.child.stdin?.write(`${back.searchParams.get("code")}#${back.searchParams.get("state")}\n`)
      yield* loggedInLine(cli, "work")
      yield* refreshesOnHost(workspace.ws.dataDir, auth, provider, "work")
    })
  )

  it.scopedLive(
    "browser_redirect: opens $BROWSER with the URL, takes the redirect on its loopback listener",
    () =>
      Effect.gen(function* () {
        const auth = yield* authServerWith({})
        const provider = loginProvider(auth, { flow: "browser_redirect" })
        providersFileFor(providersFile(), [provider])
        const opened = path.join(workspace.ws.root, "opened-url")
        const browser = path.join(workspace.ws.root, "browser.sh")
        fs.writeFileSync(browser, `#!/bin/sh\nprintf %s "$1" > "${opened}"\n`, { mode: 0o700 })
        const cli = login(["oidc"], { BROWSER: browser })
        const [, url] = yield* promise(() =>
          cli.waitForStderr(/If it did not open, open this URL:\n {2}(\S+)\n/)
        )
        yield* promise(() => until(() => fs.existsSync(opened) && fs.readFileSync(opened, "utf8") === url))
        const redirectUri = new URL(url ?? "").searchParams.get("redirect_uri") ?? ""
        const location = yield* promise(() =>
          auth.browse(url ?? "", { stopAt: (at) => at.startsWith(redirectUri) })
        )
        expect((yield* promise(() => fetch(location ?? ""))).status).toBe(200)
        yield* loggedInLine(cli)
        expect(yield* promise(() => portOpen(Number(new URL(redirectUri).port)))).toBe(false)
        yield* servedByServe(auth)
      })
  )

  it.scopedLive("Ctrl-C cancels: exit 130, nothing stored, the provider polled no more", () =>
    Effect.gen(function* () {
      const auth = yield* authServerWith({ deviceInterval: 1 })
      providersFileFor(providersFile(), [loginProvider(auth)])
      const cli = login(["oidc"])
      yield* promise(() => cli.waitForStderr(/enter the code/))
      yield* promise(() => until(() => auth.deviceTokenRequests() >= 1, { what: "a device poll" }))
      cli.child.kill("SIGINT")
      expect((yield* promise(() => cli.exited)).code).toBe(130)
      expect(cli.stdout()).toBe("")
      expect(yield* storedToken(workspace.ws.dataDir, "oidc")).toBeUndefined()
    })
  )

  it.scopedLive("on a terminal: a spinner with a countdown while it waits; Ctrl-C there exits 130", () =>
    Effect.gen(function* () {
      const auth = yield* authServerWith({})
      providersFileFor(providersFile(), [loginProvider(auth)])
      // `script` gives the command a terminal; what the terminal shows comes out on its stdout.
      const command = [
        process.execPath,
        BIN,
        "login",
        "oidc",
        "--data-dir",
        workspace.ws.dataDir,
        "--providers",
        providersFile()
      ]
      const terminal = startProcess("script", ["-qec", command.join(" "), "/dev/null"])
      const shown = () => terminal.stdout()
      yield* promise(() =>
        until(() => (shown().match(/\(9:5\d left\)/g) ?? []).length >= 2, {
          what: "two countdown frames",
          limitMs: 10_000
        })
      )
      expect(shown()).toContain("enter the code")
      // Each frame rewrites its line: carriage return, erase the line, a spinner character, the countdown.
      expect(shown()).toMatch(
        new RegExp(`\r${ERASE_LINE}[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] waiting for the login \\(9:5\\d left\\)`)
      )
      terminal.child.stdin?.write("\x03")
      expect((yield* promise(() => terminal.exited)).code).toBe(130)
      expect(yield* storedToken(workspace.ws.dataDir, "oidc")).toBeUndefined()
    })
  )

  it.scopedLive("a refused login exits 1 with the reason; a session that runs out exits 1", () =>
    Effect.gen(function* () {
      const auth = yield* authServerWith({ deviceInterval: 1 })
      providersFileFor(providersFile(), [loginProvider(auth)])
      const refused = login(["oidc"])
      const [, uri] = yield* promise(() => refused.waitForStderr(/open (\S+) and enter the code/))
      const complete = `${uri}?user_code=${/code ([A-Z-]+)/.exec(refused.stderr())?.[1]}`
      yield* promise(() => auth.browse(complete, { deny: true }))
      expect((yield* promise(() => refused.exited)).code).toBe(1)
      expect(refused.stderr()).toContain(
        "credproxy: the login did not complete: the login was refused at the provider (ACCESS_DENIED)"
      )
      expect(refused.stdout()).toBe("")

      const short = login(["oidc"], { LLXPRT_OAUTH_SESSION_TIMEOUT_SECONDS: "2" })
      expect(yield* promise(() => short.waitForStderr(/up to 0 minutes/))).toBeTruthy()
      expect((yield* promise(() => short.exited)).code).toBe(1)
      expect(short.stderr()).toContain("login session expired")
    })
  )

  it.scopedLive("an unusable provider entry or bad input: exit 2 with what to fix", () =>
    Effect.gen(function* () {
      const auth = yield* authServerWith({ deviceFlow: false })
      providersFileFor(providersFile(), [loginProvider(auth)])
      const run = (args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
        promise(() =>
          runCli(["login", ...args, "--data-dir", workspace.ws.dataDir, "--providers", providersFile()], {
            env
          })
        )
      const noDevice = yield* run(["oidc", "--flow", "device_code"])
      expect(noDevice).toMatchObject({ code: 2, stdout: "" })
      expect(noDevice.stderr).toContain(
        "provider oidc cannot log in with device_code: it has no deviceAuthorizationEndpoint"
      )
      const noRedirect = yield* run(["oidc", "--flow", "pkce_redirect"])
      expect(noRedirect.stderr).toContain("set login.redirectUri in the providers file")
      expect(yield* run(["nobody"])).toMatchObject({
        code: 2,
        stderr: expect.stringContaining("provider nobody is not configured")
      })
      expect(yield* run(["oidc"], { LLXPRT_OAUTH_SESSION_TIMEOUT_SECONDS: "ten" })).toMatchObject({
        code: 2,
        stderr: expect.stringContaining(
          "set LLXPRT_OAUTH_SESSION_TIMEOUT_SECONDS to a whole number of seconds, 1 or more"
        )
      })
      expect((yield* run(["bad/name"])).code).toBe(2)

      // A pasted-code login whose input ends, or is not a code.
      providersFileFor(providersFile(), [
        loginProvider(auth, { flow: "pkce_redirect", redirectUri: REDIRECT_URI })
      ])
      const nothing = yield* run(["oidc"])
      expect(nothing).toMatchObject({ code: 2, stderr: expect.stringContaining("no code was pasted") })
      const notACode = yield* promise(() =>
        runCli(["login", "oidc", "--data-dir", workspace.ws.dataDir, "--providers", providersFile()], {
          stdin: "this is not a code\n"
        })
      )
      expect(notACode).toMatchObject({
        code: 2,
        stderr: expect.stringContaining("the pasted text is not a code")
      })
    })
  )
})
