import * as fs from "node:fs"
import * as net from "node:net"
import * as path from "node:path"
import * as Effect from "effect/Effect"
import { afterEach, describe, expect, it } from "vitest"
import { KeyringUnavailable } from "../src/errors/startup.js"
import * as KeyringClient from "../src/layers/keyring/keyring-client.js"
import { KEYRING_CALL_TIMEOUT_MS } from "../src/layers/keyring/keyring-client.js"
import { listingOf } from "../src/layers/keyring/keyring-entries.js"
import { runCli, startServe, useCliWorkspace } from "./support/cli.js"
import { FrameClient } from "./support/frame-client.js"
import {
  keyringSuite,
  SECRET_SERVICE_MISSING,
  type SecretService,
  startSecretService,
  stopAllSecretServices
} from "./support/secret-service.js"

/**
 * The keyring store through the real binary (docs/PROTOCOL.md §21), on a real
 * Secret Service of its own per test: a keyring that cannot be used stops
 * every command at start-up with exit 2 and a message that names the store,
 * within the keyring deadline; a keyring that hangs later answers
 * `INTERNAL_ERROR` within it; two servers on one keyring lose no update;
 * `store copy` moves everything both ways.
 */

const workspace = useCliWorkspace()
const { clients } = workspace
afterEach(() => stopAllSecretServices())

const message = (reason: KeyringUnavailable["reason"]) =>
  `credproxy: ${new KeyringUnavailable({ reason, timeoutMs: KEYRING_CALL_TIMEOUT_MS }).message}\n`

const TOKEN = { access_token: "at-1", expiry: 2_000_000_000, token_type: "Bearer", refresh_token: "rt-kept" }

/** Runs `credproxy ARGS --store keyring --data-dir DIR` against `secrets` (or the given environment). */
const keyringCli = (args: ReadonlyArray<string>, env: Readonly<Record<string, string>>, stdin?: string) =>
  runCli([...args, "--store", "keyring", "--data-dir", workspace.ws.dataDir], {
    env,
    ...(stdin === undefined ? {} : { stdin })
  })

const timed = async <A>(f: () => Promise<A>): Promise<{ value: A; ms: number }> => {
  const started = Date.now()
  const value = await f()
  return { value, ms: Date.now() - started }
}

describe.skipIf(SECRET_SERVICE_MISSING !== undefined)(keyringSuite("a keyring that cannot be used"), () => {
  it("a missing bus: every command exits 2 naming the store, at once", async () => {
    const env = { DBUS_SESSION_BUS_ADDRESS: `unix:path=${path.join(workspace.ws.root, "no-bus")}` }
    for (const args of [
      ["token", "list"],
      ["key", "list"],
      ["token", "show", "anthropic"]
    ]) {
      const { value, ms } = await timed(() => keyringCli(args, env))
      expect(value.code).toBe(2)
      expect(value.stderr).toBe(message("Unreachable"))
      expect(ms).toBeLessThan(KEYRING_CALL_TIMEOUT_MS)
    }
    const { value, ms } = await timed(() =>
      runCli(
        [
          "serve",
          "--store",
          "keyring",
          "--data-dir",
          workspace.ws.dataDir,
          "--socket-dir",
          workspace.ws.socketDir
        ],
        { env }
      )
    )
    expect(value).toMatchObject({ code: 2, stdout: "" })
    expect(value.stderr).toBe(message("Unreachable"))
    expect(ms).toBeLessThan(KEYRING_CALL_TIMEOUT_MS)
  })

  it("a locked collection: exit 2 with what to do, within the deadline", async () => {
    const secrets = await startSecretService()
    secrets.lock()
    const { value, ms } = await timed(() =>
      keyringCli(["token", "import", "anthropic"], secrets.env, JSON.stringify(TOKEN))
    )
    expect(value.code).toBe(2)
    expect(value.stderr).toBe(message("Refused"))
    expect(ms).toBeLessThan(KEYRING_CALL_TIMEOUT_MS)
    const serve = await timed(() =>
      runCli(
        [
          "serve",
          "--store",
          "keyring",
          "--data-dir",
          workspace.ws.dataDir,
          "--socket-dir",
          workspace.ws.socketDir
        ],
        {
          env: secrets.env
        }
      )
    )
    expect(serve.value).toMatchObject({ code: 2, stdout: "", stderr: message("Refused") })
    expect(serve.ms).toBeLessThan(KEYRING_CALL_TIMEOUT_MS)
  })

  it("a bus that never answers: exit 2 at the keyring deadline, never a hang", async () => {
    // Accepts the connection and says nothing, as a hung bus or keyring daemon would.
    const silent = net.createServer(() => {})
    const socket = path.join(workspace.ws.root, "silent")
    await new Promise<void>((resolve) => silent.listen(socket, resolve))
    try {
      const { value, ms } = await timed(() =>
        keyringCli(["token", "list"], { DBUS_SESSION_BUS_ADDRESS: `unix:path=${socket}` })
      )
      expect(value.code).toBe(2)
      expect(value.stderr).toBe(message("Timeout"))
      expect(ms).toBeGreaterThanOrEqual(KEYRING_CALL_TIMEOUT_MS)
      expect(ms).toBeLessThan(KEYRING_CALL_TIMEOUT_MS + 5_000)
    } finally {
      silent.close()
    }
  })

  it("CREDPROXY_STORE chooses the store, --store wins over it, and a bad value is refused", async () => {
    const secrets = await startSecretService()
    const env = { ...secrets.env, CREDPROXY_STORE: "keyring" }
    const imported = await runCli(["token", "import", "anthropic", "--data-dir", workspace.ws.dataDir], {
      env,
      stdin: JSON.stringify(TOKEN)
    })
    expect(imported.code).toBe(0)
    expect((await runCli(["token", "list", "--data-dir", workspace.ws.dataDir], { env })).stdout).toBe(
      "anthropic:default\n"
    )
    expect(
      (await runCli(["token", "list", "--store", "file", "--data-dir", workspace.ws.dataDir], { env })).stdout
    ).toBe("")
    expect(fs.existsSync(path.join(workspace.ws.dataDir, "tokens", "anthropic"))).toBe(false)
    const bad = await runCli(["token", "list", "--data-dir", workspace.ws.dataDir], {
      env: { CREDPROXY_STORE: "vault" }
    })
    expect(bad.code).toBe(2)
    expect(bad.stderr).toContain('CREDPROXY_STORE must be file or keyring, not "vault"')
  })
})

describe.skipIf(SECRET_SERVICE_MISSING !== undefined)(keyringSuite("a running server on the keyring"), () => {
  const serveOn = (secrets: SecretService, socketDir = workspace.ws.socketDir) =>
    startServe(
      [
        "--store",
        "keyring",
        "--data-dir",
        workspace.ws.dataDir,
        "--socket-dir",
        socketDir,
        "--rate-limit",
        "0"
      ],
      {
        env: secrets.env
      }
    )
  const connect = async (socketPath: string) => {
    const client = await FrameClient.open(socketPath)
    clients.push(client)
    return client
  }

  it("a keyring that hangs: a read answers INTERNAL_ERROR within the keyring deadline; the server stays up", async () => {
    const secrets = await startSecretService()
    expect(
      (await keyringCli(["token", "import", "anthropic"], secrets.env, JSON.stringify(TOKEN))).code
    ).toBe(0)
    const server = await serveOn(secrets)
    const client = await connect(server.socketPath)
    expect((await client.request("get_token", { provider: "anthropic" })).ok).toBe(true)
    secrets.freeze()
    try {
      const { value, ms } = await timed(() => client.request("get_token", { provider: "other" }))
      expect(value).toMatchObject({
        ok: false,
        code: "INTERNAL_ERROR",
        error: "credential store unavailable"
      })
      expect(ms).toBeLessThan(KEYRING_CALL_TIMEOUT_MS + 2_000)
      // A new connection is served meanwhile: nothing of the server waits for the keyring.
      const other = await connect(server.socketPath)
      expect(await other.request("get_token", {})).toMatchObject({ ok: false, code: "INVALID_REQUEST" })
    } finally {
      secrets.thaw()
    }
    // Once it answers again, so does the store (a new helper after the old one was given up).
    await new Promise((resolve) => setTimeout(resolve, 1_500))
    expect(await client.request("get_token", { provider: "anthropic" })).toMatchObject({
      ok: true,
      data: { access_token: "at-1" }
    })
  })

  it("two servers on one keyring: concurrent save_tokens from both lose no update", async () => {
    const secrets = await startSecretService()
    expect((await keyringCli(["token", "import", "shared"], secrets.env, JSON.stringify(TOKEN))).code).toBe(0)
    const first = await serveOn(secrets)
    const second = await serveOn(secrets, path.join(workspace.ws.root, "s2"))
    expect(first.socketPath).not.toBe(second.socketPath)
    const connections = await Promise.all(
      [first, second, first, second].map((server) => connect(server.socketPath))
    )
    const count = 60
    const replies = await Promise.all(
      Array.from({ length: count }, (_, i) =>
        connections[i % connections.length]!.request("save_token", {
          provider: "shared",
          token: { access_token: `at-${i}`, expiry: 2_000_000_000, token_type: "Bearer", [`field_${i}`]: i }
        })
      )
    )
    expect(replies.every((reply) => reply.ok)).toBe(true)
    const shown = await keyringCli(["token", "show", "shared", "--reveal"], secrets.env)
    const stored = JSON.parse(shown.stdout) as Record<string, unknown>
    for (let i = 0; i < count; i++) expect(stored[`field_${i}`], `field_${i}`).toBe(i)
    expect(stored.refresh_token).toBe("rt-kept")
  }, 60_000)
})

describe.skipIf(SECRET_SERVICE_MISSING !== undefined)(keyringSuite("credproxy store copy"), () => {
  it("copies every token and key to the keyring and back, verified; --move empties the source; safe to re-run", async () => {
    const secrets = await startSecretService()
    const env = secrets.env
    const file = (args: ReadonlyArray<string>, stdin?: string) =>
      runCli([...args, "--data-dir", workspace.ws.dataDir], {
        env,
        ...(stdin === undefined ? {} : { stdin })
      })
    expect((await file(["token", "import", "anthropic"], JSON.stringify(TOKEN))).code).toBe(0)
    const work = { ...TOKEN, access_token: "at-work", extra: { nested: [1, "é"] } }
    expect((await file(["token", "import", "openai", "--bucket", "work"], JSON.stringify(work))).code).toBe(0)
    expect((await file(["key", "set", "openai"], "sk-openai\n")).code).toBe(0)

    const copied = await file(["store", "copy", "--from", "file", "--to", "keyring"])
    expect(copied).toMatchObject({ code: 0, stdout: "" })
    expect(copied.stderr).toBe(
      "copied token anthropic:default\ncopied token openai:work\ncopied key openai\n" +
        "copied 2 tokens and 1 key from the file store to the keyring store\n"
    )
    // The source is untouched; the target holds the same, refresh tokens included.
    expect((await file(["token", "list"])).stdout).toBe("anthropic:default\nopenai:work\n")
    const shown = await keyringCli(["token", "show", "openai", "--bucket", "work", "--reveal"], env)
    expect(JSON.parse(shown.stdout)).toEqual(work)
    expect((await keyringCli(["key", "list"], env)).stdout).toBe("openai\n")

    // Again, with --move: the same values, then the source is empty; a third run finds nothing.
    const moved = await file(["store", "copy", "--from", "file", "--to", "keyring", "--move"])
    expect(moved.code).toBe(0)
    expect(moved.stderr).toContain("moved 2 tokens and 1 key from the file store to the keyring store")
    expect((await file(["token", "list"])).stdout).toBe("")
    expect((await file(["key", "list"])).stdout).toBe("")
    const again = await file(["store", "copy", "--from", "file", "--to", "keyring", "--move"])
    expect(again).toMatchObject({
      code: 0,
      stderr: "moved 0 tokens and 0 keys from the file store to the keyring store\n"
    })

    // And back.
    expect((await file(["store", "copy", "--from", "keyring", "--to", "file", "--move"])).code).toBe(0)
    expect(JSON.parse((await file(["token", "show", "anthropic", "--reveal"])).stdout)).toEqual(TOKEN)
    expect((await keyringCli(["token", "list"], env)).stdout).toBe("")
    const same = await file(["store", "copy", "--from", "file", "--to", "file"])
    expect(same).toMatchObject({
      code: 2,
      stderr: "credproxy: --from and --to are both file; name two different stores\n"
    })
  }, 60_000)
})

describe.skipIf(SECRET_SERVICE_MISSING !== undefined)(keyringSuite("the keyring's listing"), () => {
  it("keeps at most the limit of each kind, names only, and ignores entries that are not credproxy's", async () => {
    const secrets = await startSecretService({ inMemory: true })
    process.env.DBUS_SESSION_BUS_ADDRESS = secrets.address
    const accounts = await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const keyring = yield* KeyringClient.make({ service: "credproxy-listing" })
          const writes = [
            ...Array.from({ length: 30 }, (_, i) => `token:p:b${i}`),
            ...Array.from({ length: 30 }, (_, i) => `key:k${i}`),
            "probe:1",
            "other",
            "token:only-one-part"
          ]
          yield* Effect.forEach(writes, (account) => keyring.set(account, '"v"', "save"), { discard: true })
          return yield* keyring.list(20)
        })
      )
    )
    expect(accounts.filter((account) => account.startsWith("token:"))).toHaveLength(20)
    expect(accounts.filter((account) => account.startsWith("key:"))).toHaveLength(20)
    expect(accounts).not.toContain("probe:1")
    expect(accounts).not.toContain("other")
    // The store asks for LISTING_LIMIT of each; its parsing drops what it would not have named.
    const listing = listingOf([...accounts, "token:only-one-part", "key:a:b"])
    expect([...listing.tokens.keys()]).toEqual(["p"])
    expect(listing.tokens.get("p")!.length + listing.keys.length).toBeGreaterThanOrEqual(39)
    expect(listing.keys.every((name) => /^k\d+$/.test(name))).toBe(true)
  })
})

describe.skipIf(SECRET_SERVICE_MISSING !== undefined)(
  keyringSuite("credproxy doctor on the keyring store"),
  () => {
    const doctor = (env: Readonly<Record<string, string>>) =>
      runCli(["doctor", "--json", "--store", "keyring", "--data-dir", workspace.ws.dataDir], { env })
    const storeFinding = (stdout: string) =>
      (
        JSON.parse(stdout) as {
          checks: Array<{ check: string; status: string; detail: string; fix?: string }>
        }
      ).checks.find((finding) => finding.check === "store")

    it("an unlocked keyring: the store check reads every entry and says so, printing no value", async () => {
      const secrets = await startSecretService()
      expect(
        (await keyringCli(["token", "import", "anthropic"], secrets.env, JSON.stringify(TOKEN))).code
      ).toBe(0)
      const result = await doctor(secrets.env)
      expect(storeFinding(result.stdout)).toMatchObject({
        status: "ok",
        detail: "the keyring is unlocked; 1 token and 0 API keys, all readable"
      })
      expect(result.stdout + result.stderr).not.toContain("at-1")
      expect(result.stdout + result.stderr).not.toContain("rt-kept")
    })

    it("no keyring on the bus: the store check fails with what to do, and doctor exits 1", async () => {
      const env = { DBUS_SESSION_BUS_ADDRESS: `unix:path=${path.join(workspace.ws.root, "no-bus")}` }
      const result = await doctor(env)
      expect(result.code).toBe(1)
      const unavailable = new KeyringUnavailable({
        reason: "Unreachable",
        timeoutMs: KEYRING_CALL_TIMEOUT_MS
      })
      expect(storeFinding(result.stdout)).toEqual({
        check: "store",
        status: "fail",
        detail: unavailable.explained.what,
        fix: unavailable.explained.fix
      })
    })
  }
)
