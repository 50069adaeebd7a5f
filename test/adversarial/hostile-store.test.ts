import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { runCli, serverStatus, startServe, useCliWorkspace } from "../support/cli.js"
import { FrameClient } from "../support/frame-client.js"

/**
 * PROTOCOL.md §22 against the real binary, for what a process that can write
 * where it should not (a data directory mounted into a sandbox by mistake, a
 * shared one) could do to the store: plant links, open the directory to
 * others, swap directories during writes, fill the store, hand over a bad
 * capability token file, and leave sockets behind a killed server.
 */

const workspace = useCliWorkspace()
const isRoot = process.getuid?.() === 0
const token = (fields: Record<string, unknown> = {}) => ({
  access_token: "at-real",
  expiry: 2_000_000_000,
  token_type: "Bearer",
  refresh_token: "rt-real-SECRET",
  ...fields
})

const data = () => ["--data-dir", workspace.ws.dataDir]
const serveArgs = (...extra: Array<string>) => [
  ...data(),
  "--socket-dir",
  workspace.ws.socketDir,
  "--log-format",
  "json",
  ...extra
]

const importToken = async (provider: string, value: unknown, bucket = "default") => {
  const result = await runCli(["token", "import", provider, "--bucket", bucket, ...data()], {
    stdin: JSON.stringify(value)
  })
  expect(result.code, result.stderr).toBe(0)
}

const open = async (socketPath: string): Promise<FrameClient> => {
  const client = await FrameClient.open(socketPath)
  workspace.clients.push(client)
  return client
}

/** Every JSON log line of `stderr` that says a link or a private directory was refused, by its entry. */
const refusedEntries = (stderr: string): Array<string> =>
  stderr
    .split("\n")
    .filter((line) => /symbolic link in the store ignored|store directory refused/.test(line))
    .map((line) => String((JSON.parse(line) as { annotations: { entry: string } }).annotations.entry))

describe("links planted in the store (§22)", () => {
  it("are never followed: nothing from outside is served, each is logged by its store-relative name only", async () => {
    const outside = path.join(workspace.ws.root, "outside")
    fs.mkdirSync(outside)
    fs.writeFileSync(path.join(outside, "shadow"), "root:OUTSIDE-SECRET:19000::::::\n")
    fs.writeFileSync(
      path.join(outside, "default.json"),
      JSON.stringify(token({ access_token: "at-OUTSIDE-SECRET" }))
    )
    await importToken("anthropic", token())
    await importToken("victim", token())
    const keySet = await runCli(["key", "set", "openai", ...data()], { stdin: "sk-real" })
    expect(keySet.code).toBe(0)

    const store = workspace.ws.dataDir
    // A key file replaced by a link to a file outside; a token file likewise; a provider directory
    // replaced by a link to a directory outside that holds a token.
    fs.rmSync(path.join(store, "keys", "openai.key"))
    fs.symlinkSync(path.join(outside, "shadow"), path.join(store, "keys", "openai.key"))
    fs.rmSync(path.join(store, "tokens", "anthropic", "default.json"))
    fs.symlinkSync(
      path.join(outside, "default.json"),
      path.join(store, "tokens", "anthropic", "default.json")
    )
    fs.rmSync(path.join(store, "tokens", "victim"), { recursive: true })
    fs.symlinkSync(outside, path.join(store, "tokens", "victim"))

    const server = await startServe(serveArgs("--log-level", "debug"))
    const client = await open(server.socketPath)
    const answers = [
      await client.request("get_api_key", { name: "openai" }),
      await client.request("has_api_key", { name: "openai" }),
      await client.request("get_token", { provider: "anthropic" }),
      await client.request("get_token", { provider: "victim" }),
      await client.request("list_api_keys"),
      await client.request("list_providers"),
      await client.request("list_buckets", { provider: "victim" })
    ]
    expect(answers.map((answer) => (answer.ok === true ? true : answer.code))).toEqual([
      "NOT_FOUND",
      true,
      "NOT_FOUND",
      "NOT_FOUND",
      true,
      true,
      true
    ])
    expect(answers[1]!.data).toEqual({ exists: false })
    expect(answers[4]!.data).toEqual({ keys: [] })
    expect(answers[5]!.data).toEqual({ providers: [] })
    expect(answers[6]!.data).toEqual({ buckets: [] })
    // A write through the planted directory link is refused, and nothing lands outside.
    const saved = await client.request("save_token", {
      provider: "victim",
      token: { access_token: "at-new", expiry: 1, token_type: "Bearer" }
    })
    expect(saved).toMatchObject({ ok: false, code: "INTERNAL_ERROR" })
    expect(fs.readdirSync(outside).sort()).toEqual(["default.json", "shadow"])
    expect(JSON.stringify(answers)).not.toContain("OUTSIDE-SECRET")

    expect(await server.stop()).toEqual({ code: 0, signal: null })
    const log = server.stderr()
    expect(log).not.toContain("OUTSIDE-SECRET")
    expect(log).not.toContain(outside)
    expect([...new Set(refusedEntries(log))].sort()).toEqual([
      "keys/openai.key",
      "tokens/anthropic/default.json",
      "tokens/victim"
    ])
  })
})

describe("a data directory that is not private (§22)", () => {
  it("open to others (0777, or a store directory 0777): every command refuses it with exit 2 and says how to fix it", async () => {
    await importToken("anthropic", token())
    const store = workspace.ws.dataDir
    for (const dir of [store, path.join(store, "tokens")]) {
      fs.chmodSync(dir, 0o777)
      for (const args of [
        ["token", "list", ...data()],
        ["key", "list", ...data()],
        ["token", "show", "anthropic", ...data()],
        ["serve", ...serveArgs()]
      ]) {
        const result = await runCli(args)
        expect(result.code, `${args[0]} ${args[1]}: ${result.stderr}`).toBe(2)
        expect(result.stderr).toContain(`data directory ${fs.realpathSync(dir)} has mode 777`)
        expect(result.stderr).toContain("chmod 700")
        expect(result.stdout).toBe("")
      }
      fs.chmodSync(dir, 0o700)
    }
    expect((await runCli(["token", "list", ...data()])).stdout).toBe("anthropic:default\n")
  })

  it.skipIf(!isRoot)("owned by another user (needs root to chown): refused with exit 2", async () => {
    await importToken("anthropic", token())
    fs.chownSync(workspace.ws.dataDir, 65534, 65534)
    const result = await runCli(["token", "list", ...data()])
    expect(result.code).toBe(2)
    expect(result.stderr).toContain(`is owned by uid 65534, not by this user`)
  })
})

describe("directories swapped during writes (§22)", () => {
  it("40 writes while the provider's directory keeps being swapped for a link outside: nothing lands outside, no temp file is left", async () => {
    await importToken("p", token())
    const outside = path.join(workspace.ws.root, "outside")
    fs.mkdirSync(outside, { mode: 0o700 })
    const server = await startServe(serveArgs("--rate-limit", "0"))
    const client = await open(server.socketPath)
    const tokens = path.join(workspace.ws.dataDir, "tokens")
    const real = path.join(tokens, "p")
    const aside = path.join(tokens, ".p-aside")
    // The swapper: the real directory goes aside (still inside the store) and a link to the outside
    // takes its name; then the other way round; as fast as the event loop lets it.
    let swapping = true
    let swaps = 0
    const swapper = (async () => {
      while (swapping) {
        try {
          if (fs.lstatSync(real).isDirectory()) {
            fs.renameSync(real, aside)
            fs.symlinkSync(outside, real)
          } else {
            fs.unlinkSync(real)
            fs.renameSync(aside, real)
          }
          swaps++
        } catch {
          // A write recreated the directory meanwhile: go on.
        }
        await new Promise((resolve) => setImmediate(resolve))
      }
    })()
    const outcomes: Array<string> = []
    for (let i = 0; i < 40; i++) {
      const reply = await client.request("save_token", {
        provider: "p",
        bucket: `b${i}`,
        token: { access_token: `at-${i}`, expiry: 1, token_type: "Bearer", refresh_token: "rt-sandbox" }
      })
      outcomes.push(reply.ok === true ? "ok" : String(reply.code))
    }
    swapping = false
    await swapper
    expect(swaps).toBeGreaterThan(10)
    expect(outcomes.every((outcome) => outcome === "ok" || outcome === "INTERNAL_ERROR")).toBe(true)
    // Nothing of the store outside it; no temp file anywhere.
    expect(fs.readdirSync(outside)).toEqual([])
    const everything = fs.readdirSync(workspace.ws.dataDir, { recursive: true }) as Array<string>
    expect(everything.filter((name) => name.endsWith(".tmp"))).toEqual([])
    expect(await server.stop()).toEqual({ code: 0, signal: null })
  })
})

describe("the store's size limits (§22)", () => {
  it("with a 256 MB heap: 300 new buckets, the 257th FORBIDDEN; a 17 KiB token INVALID_REQUEST; RSS under 200 MB", async () => {
    const server = await startServe(serveArgs("--rate-limit", "0"), {
      env: { NODE_OPTIONS: "--max-old-space-size=256" }
    })
    const client = await open(server.socketPath)
    const pad = "x".repeat(15 * 1024)
    const codes: Array<string> = []
    for (let i = 0; i < 300; i++) {
      const reply = await client.request("save_token", {
        provider: "flood",
        bucket: `b${i}`,
        token: { access_token: `at-${i}`, expiry: 1, token_type: "Bearer", pad }
      })
      codes.push(reply.ok === true ? "ok" : `${reply.code}: ${reply.error}`)
    }
    expect(codes.slice(0, 256).every((code) => code === "ok")).toBe(true)
    expect(new Set(codes.slice(256))).toEqual(new Set(["FORBIDDEN: store limit reached"]))
    // Updates of existing tokens do not count against the limit.
    const update = await client.request("save_token", {
      provider: "flood",
      bucket: "b0",
      token: { access_token: "at-updated", expiry: 1, token_type: "Bearer" }
    })
    expect(update.ok).toBe(true)
    const tooLarge = await client.request("save_token", {
      provider: "flood",
      bucket: "b1",
      token: { access_token: "at", expiry: 1, token_type: "Bearer", pad: "y".repeat(17 * 1024) }
    })
    expect(tooLarge).toMatchObject({
      ok: false,
      code: "INVALID_REQUEST",
      error: "token too large: at most 16384 bytes as stored"
    })
    // Everything saved is served.
    for (let i = 0; i < 256; i += 51) {
      expect((await client.request("get_token", { provider: "flood", bucket: `b${i}` })).ok).toBe(true)
    }
    const rssKb = Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${server.pid}/status`, "utf8"))?.[1])
    expect(rssKb).toBeLessThan(200 * 1024)
    expect(await server.stop()).toEqual({ code: 0, signal: null })
  })

  it("token import on the host refuses a token over 16 KiB with exit 2", async () => {
    const result = await runCli(["token", "import", "big", ...data()], {
      stdin: JSON.stringify(token({ pad: "z".repeat(17 * 1024) }))
    })
    expect(result.code).toBe(2)
    expect(result.stderr).toContain("larger than 16384 bytes")
  })
})

describe("capability token files (§22)", () => {
  it("a link, a file with a NUL byte or invalid UTF-8 is refused: exit 2 naming the file", async () => {
    const dir = workspace.ws.root
    const good = path.join(dir, "good")
    fs.writeFileSync(good, "secret-token-1234\n", { mode: 0o600 })
    const link = path.join(dir, "link")
    fs.symlinkSync(good, link)
    const nul = path.join(dir, "nul")
    fs.writeFileSync(nul, Buffer.from("secret\u0000token"), { mode: 0o600 })
    const latin1 = path.join(dir, "latin1")
    fs.writeFileSync(latin1, Buffer.from([0x73, 0x65, 0xe9, 0x63]), { mode: 0o600 })
    for (const [file, words] of [
      [link, "is a symbolic link"],
      [nul, "holds a NUL byte"],
      [latin1, "is not valid UTF-8"]
    ] as const) {
      const result = await runCli(["serve", ...serveArgs("--capability-token-file", file)])
      expect(result.code, result.stderr).toBe(2)
      expect(result.stderr).toContain(`capability token file ${file} ${words}`)
      expect(result.stderr).not.toContain("secret")
    }
  })

  it.skipIf(!isRoot)("a file owned by another user is refused (needs root to chown)", async () => {
    const file = path.join(workspace.ws.root, "foreign")
    fs.writeFileSync(file, "secret-token-1234\n", { mode: 0o600 })
    fs.chownSync(file, 65534, 65534)
    const result = await runCli(["serve", ...serveArgs("--capability-token-file", file)])
    expect(result.code).toBe(2)
    expect(result.stderr).toContain(`capability token file ${file} is owned by uid 65534`)
  })
})

describe("sockets of killed servers (§22)", () => {
  it("a serve after a SIGKILLed one removes the dead server's socket and says how many it removed", async () => {
    const killed = await startServe(serveArgs())
    killed.child.kill("SIGKILL")
    await killed.exited
    expect(fs.existsSync(killed.socketPath)).toBe(true)
    const next = await startServe(serveArgs())
    expect(fs.existsSync(killed.socketPath)).toBe(false)
    expect(fs.existsSync(next.socketPath)).toBe(true)
    expect(next.stderr()).toContain('"message":"removed sockets of servers that are gone"')
    expect(next.stderr()).toContain('"count":1')
    // The live server's own socket is left alone by a third one.
    const third = await startServe(serveArgs())
    expect(fs.existsSync(next.socketPath)).toBe(true)
    expect((await serverStatus(third)).connections.open).toBe(0)
    expect(await third.stop()).toEqual({ code: 0, signal: null })
    expect(await next.stop()).toEqual({ code: 0, signal: null })
  })
})
