import { spawn } from "node:child_process"
import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as path from "node:path"
import * as Effect from "effect/Effect"
import { describe, expect, it } from "vitest"
import * as FileTokenStore from "../../src/layers/FileTokenStore.js"
import { LOCK_OPTIONS } from "../../src/layers/file-store/file-lock.js"
import { sleep } from "../support/adversarial.js"
import { runCli, startServe, useCliWorkspace } from "../support/cli.js"
import { FrameClient, type Json } from "../support/frame-client.js"

/**
 * Crash safety of the file store, with real processes: a `credproxy serve`
 * child saving tokens in a tight loop (driven over its socket) is killed with
 * SIGKILL at random moments, many times. After every kill each token file
 * parses and holds either the last acknowledged save or the one in flight,
 * with the stored refresh token intact; temp files and lock directories left
 * behind are never taken for tokens; and a lock left by a dead process does
 * not block the next writer for longer than its staleness (10 s, judged by
 * the lock directory's mtime).
 */

const PROVIDER = "anthropic"
const BUCKETS = ["b0", "b1", "b2"] as const
const KILLS = 15
const refreshOf = (bucket: string) => `rt-CRASH-${bucket}-keepme`

/** A save whose fields agree with each other, so a torn or mixed file is detectable. */
const tokenFor = (bucket: string, n: number) => ({
  access_token: `at-${bucket}-${n}`,
  id_token: `id-${bucket}-${n}`,
  n,
  expiry: 4_102_444_800 + n,
  token_type: "Bearer"
})

const workspace = useCliWorkspace()
const { clients } = workspace

const tokensDir = () => path.join(workspace.ws.dataDir, "tokens", PROVIDER)
const tokenFile = (bucket: string) => path.join(tokensDir(), `${bucket}.json`)

const seed = (buckets: ReadonlyArray<string>) =>
  Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const store = yield* FileTokenStore.make(workspace.ws.dataDir)
        for (const bucket of buckets) {
          yield* store.save(
            { provider: PROVIDER, bucket },
            { ...tokenFor(bucket, 0), refresh_token: refreshOf(bucket) }
          )
        }
      })
    )
  )

const serve = () =>
  startServe([
    "--data-dir",
    workspace.ws.dataDir,
    "--socket-dir",
    workspace.ws.socketDir,
    "--rate-limit",
    "0"
  ])

const open = async (socketPath: string): Promise<FrameClient> => {
  const client = await FrameClient.open(socketPath)
  clients.push(client)
  return client
}

/** The token file of `bucket`, checked for internal consistency; returns its save number. */
const readConsistent = (bucket: string): number => {
  const text = fs.readFileSync(tokenFile(bucket), "utf8")
  const token = JSON.parse(text)
  expect(Object.keys(token).sort()).toEqual(
    ["access_token", "expiry", "id_token", "n", "refresh_token", "token_type"].sort()
  )
  const n = token.n as number
  expect(token).toEqual({ ...tokenFor(bucket, n), refresh_token: refreshOf(bucket) })
  return n
}

/** What may sit next to token files: the files themselves, hidden temp files, lock directories. */
const checkDirectory = () => {
  const entries = fs.readdirSync(tokensDir(), { withFileTypes: true })
  const kinds = { tokens: [] as Array<string>, temps: 0, locks: [] as Array<string> }
  for (const entry of entries) {
    if (entry.isFile() && BUCKETS.some((b) => entry.name === `${b}.json`)) kinds.tokens.push(entry.name)
    else if (entry.isFile() && /^\.b\d\.json\.[0-9a-f]{16}\.tmp$/.test(entry.name)) kinds.temps++
    else if (entry.isDirectory() && /^b\d\.json\.lock$/.test(entry.name)) kinds.locks.push(entry.name)
    else throw new Error(`unexpected entry next to the token files: ${entry.name}`)
  }
  expect(kinds.tokens.sort()).toEqual(BUCKETS.map((b) => `${b}.json`))
  expect(fs.readdirSync(path.join(workspace.ws.dataDir, "tokens"))).toEqual([PROVIDER])
  return kinds
}

interface KeyState {
  acked: number
  sent: number
}

/** Saves `bucket` over and over, one request at a time, until the connection dies. */
const saveLoop = async (client: FrameClient, bucket: string, state: KeyState): Promise<void> => {
  for (;;) {
    const n = state.acked + 1
    state.sent = n
    let reply: Json
    try {
      reply = await client.request(
        "save_token",
        { provider: PROVIDER, bucket, token: tokenFor(bucket, n) },
        `s${n}`
      )
    } catch (error) {
      if (client.closed) return
      throw error
    }
    expect(reply).toEqual({ v: 1, id: `s${n}`, ok: true, data: {} })
    state.acked = n
  }
}

describe("crash safety of the file store", () => {
  it(`a proxy saving in a tight loop, SIGKILLed ${KILLS} times: every file is the old or the new token, nothing blocks the next writer`, async () => {
    await seed(BUCKETS)
    const states = new Map<string, KeyState>(BUCKETS.map((b) => [b, { acked: 0, sent: 0 }]))
    const report = { acked: 0, locksLeft: 0, tempsLeft: 0, delays: [] as Array<number> }

    for (let round = 0; round < KILLS; round++) {
      const server = await serve()
      const probe = await open(server.socketPath)
      // What the last crash left is what a new server serves: every bucket, nothing else, no temp file.
      expect(await probe.request("list_buckets", { provider: PROVIDER })).toMatchObject({
        ok: true,
        data: { buckets: [...BUCKETS] }
      })
      for (const bucket of BUCKETS) {
        // Served sanitized, exactly as on disk.
        const reply = await probe.request("get_token", { provider: PROVIDER, bucket })
        expect(reply).toEqual({
          v: 1,
          id: reply.id,
          ok: true,
          data: tokenFor(bucket, readConsistent(bucket))
        })
      }
      probe.close()

      const savers = await Promise.all(BUCKETS.map(() => open(server.socketPath)))
      const loops = Promise.all(BUCKETS.map((bucket, i) => saveLoop(savers[i]!, bucket, states.get(bucket)!)))
      const delay = 20 + Math.floor(Math.random() * 181)
      report.delays.push(delay)
      await sleep(delay)
      server.child.kill("SIGKILL")
      const exit = await server.exited
      expect(exit.signal).toBe("SIGKILL")
      // Every loop ended because its connection died, not because a save failed or hung.
      await loops

      for (const bucket of BUCKETS) {
        const state = states.get(bucket)!
        const n = readConsistent(bucket)
        // Either the last acknowledged save or the one that was in flight, never anything else.
        expect([state.acked, state.sent], `round ${round} (kill after ${delay} ms), ${bucket}`).toContain(n)
        // The next round continues from what is on disk.
        state.acked = n
        state.sent = n
      }
      const left = checkDirectory()
      report.tempsLeft += left.temps
      report.locksLeft += left.locks.length
      // A dead process's lock is stale once its mtime is 10 s old (how proper-lockfile judges it);
      // date it back instead of waiting, so the next round's writer must take it over. The real-time
      // wait is the separate test below.
      const past = new Date(Date.now() - 60_000)
      for (const lock of left.locks) fs.utimesSync(path.join(tokensDir(), lock), past, past)
    }

    for (const state of states.values()) report.acked += state.acked
    // The loop did real work: many saves went through across the crashes.
    expect(report.acked, JSON.stringify(report)).toBeGreaterThan(3 * KILLS)

    // A last server: every token is served, the listing has no stray entries, and writes go through.
    const server = await serve()
    const client = await open(server.socketPath)
    for (const bucket of BUCKETS) {
      const n = states.get(bucket)!.acked + 1
      const started = Date.now()
      expect(
        await client.request("save_token", { provider: PROVIDER, bucket, token: tokenFor(bucket, n) })
      ).toMatchObject({ ok: true })
      expect(Date.now() - started).toBeLessThan(3_000)
      expect(readConsistent(bucket)).toBe(n)
    }
    expect((await server.stop()).code).toBe(0)
    const listed = await runCli(["token", "list", "--data-dir", workspace.ws.dataDir])
    expect(listed.code).toBe(0)
    expect(listed.stdout.split("\n").filter((l) => l !== "")).toEqual(BUCKETS.map((b) => `${PROVIDER}:${b}`))
  }, 45_000)

  it("a lock left by a SIGKILLed process blocks the next save_token only until it is stale (~10 s, real time)", async () => {
    await seed(["default"])
    const file = tokenFile("default")
    // A process that takes the store's cross-process lock on the token file, exactly as a proxy
    // does during a save, and is killed while holding it.
    const script = `
        const lockfile = require(process.env.LOCKFILE_MODULE)
        lockfile.lock(process.env.TARGET, JSON.parse(process.env.LOCK_OPTIONS)).then(
          () => process.stdout.write("locked\\n"),
          (error) => { console.error(error); process.exit(3) }
        )
        setInterval(() => {}, 1000)
      `
    const holder = spawn(process.execPath, ["-e", script], {
      env: {
        ...process.env,
        LOCKFILE_MODULE: createRequire(import.meta.url).resolve("proper-lockfile"),
        LOCK_OPTIONS: JSON.stringify(LOCK_OPTIONS),
        TARGET: file
      },
      stdio: ["ignore", "pipe", "inherit"]
    })
    try {
      await new Promise<void>((resolve, reject) => {
        holder.stdout.on("data", (chunk: Buffer) => {
          if (chunk.toString().includes("locked")) resolve()
        })
        holder.once("exit", () => reject(new Error("the lock holder exited before locking")))
      })
    } finally {
      holder.kill("SIGKILL")
    }
    const lockedAt = Date.now()
    await new Promise((resolve) => {
      if (holder.exitCode !== null || holder.signalCode !== null) resolve(null)
      else holder.once("exit", resolve)
    })
    expect(fs.statSync(`${file}.lock`).isDirectory()).toBe(true)

    const server = await serve()
    const client = await open(server.socketPath)
    const token = { ...tokenFor("default", 1) }
    client.send({ v: 1, id: "after-crash", op: "save_token", payload: { provider: PROVIDER, token } })
    const reply = await client.frameWhere((f) => f.id === "after-crash", 20_000)
    const waited = Date.now() - lockedAt
    expect(reply).toEqual({ v: 1, id: "after-crash", ok: true, data: {} })
    // The fresh lock was respected (the writer waited), then taken over once stale.
    expect(waited).toBeGreaterThanOrEqual(9_000)
    expect(waited).toBeLessThan(14_000)
    expect(readConsistent("default")).toBe(1)
    // The writer released what it took over: the lock directory is gone, and the next save is immediate.
    expect(fs.existsSync(`${file}.lock`)).toBe(false)
    const started = Date.now()
    expect(
      await client.request("save_token", { provider: PROVIDER, token: tokenFor("default", 2) })
    ).toMatchObject({ ok: true })
    expect(Date.now() - started).toBeLessThan(3_000)
    expect((await server.stop()).code).toBe(0)
  }, 40_000)
})
