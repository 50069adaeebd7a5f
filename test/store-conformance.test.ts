import { spawn } from "node:child_process"
import * as fs from "node:fs/promises"
import { createRequire } from "node:module"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as TestClock from "effect/TestClock"
import type { StoreError, StoreFailure } from "../src/errors/errors.js"
import { LOCK_OPTIONS } from "../src/layers/file-store/file-lock.js"
import { valueStamp } from "../src/layers/keyring/keyring-entries.js"
import {
  DEFAULT_MAX_BYTES,
  type Look,
  makeStoreCache,
  STORE_REVALIDATE_MS
} from "../src/layers/store-cache/store-cache.js"
import { encodeName } from "../src/lib/name-encoding.js"
import { type OAuthToken, storedTokenBytes } from "../src/protocol/token.js"
import { LISTING_LIMIT, MAX_VALUE_BYTES, type TokenKey } from "../src/services/TokenStore.js"
import { BACKENDS } from "./support/store-backends.js"

/**
 * What every store must do, run against each one (PROTOCOL.md §6, §7, §14,
 * §22, §20): the file store in a temp data directory and the keyring store
 * on a real Secret Service (gnome-keyring in a private D-Bus session; the
 * keyring tests are skipped, and say so, where none can be started).
 * "Another process" is a second opening of the same store, or a write
 * behind the stores' back on the backing store itself.
 */

const tempRoot = Effect.acquireRelease(
  Effect.promise(() => fs.mkdtemp(path.join(os.tmpdir(), "credproxy-conf-"))),
  (root) => Effect.promise(() => fs.rm(root, { recursive: true, force: true }))
)

const token = (overrides: Record<string, unknown> = {}): OAuthToken => ({
  access_token: "at-1",
  expiry: 2_000_000_000,
  token_type: "Bearer",
  refresh_token: "rt-1",
  ...overrides
})

const asStoreFailure = (error: StoreError): StoreFailure => {
  expect(error._tag).toBe("StoreFailure")
  return error as StoreFailure
}

/** Every path below `dir` (files and directories). */
const walk = async (dir: string): Promise<Array<string>> => {
  const out: Array<string> = []
  for (const entry of await fs.readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name)
    out.push(full)
    if (entry.isDirectory()) out.push(...(await walk(full)))
  }
  return out
}

const key: TokenKey = { provider: "anthropic", bucket: "default" }

for (const backend of BACKENDS) {
  const title =
    backend.missing === undefined
      ? `the ${backend.name} store`
      : `the ${backend.name} store [SKIPPED: ${backend.missing}]`
  describe.skipIf(backend.missing !== undefined)(title, () => {
    beforeAll(() => backend.setUp())
    afterAll(() => backend.tearDown())

    /** A fresh data directory and its place on the backing store. */
    const workspace = Effect.gen(function* () {
      const root = yield* tempRoot
      const dataDir = path.join(root, "data")
      return { root, dataDir, place: yield* backend.place(dataDir) }
    })

    it.scoped("round-trips a token with its passthrough fields; another opening reads it back", () =>
      Effect.gen(function* () {
        const { place } = yield* workspace
        const { tokens } = yield* place.open
        const saved = token({
          scope: null,
          account_id: "acct-1",
          resource_url: "https://x",
          extra: { n: [1, 2] }
        })
        yield* tokens.save(key, saved)
        expect(yield* tokens.get(key)).toBe(saved)
        const other = (yield* place.open).tokens
        expect(yield* other.get(key)).toEqual(saved)
        expect(yield* other.getLatest(key)).toEqual(saved)
        expect(yield* other.get({ provider: "anthropic", bucket: "other" })).toBeUndefined()
      })
    )

    it.scoped("stores a token as its compact JSON, exactly the bytes storedTokenBytes counts (§22)", () =>
      Effect.gen(function* () {
        const { place } = yield* workspace
        const { tokens } = yield* place.open
        const saved = token({ scope: "a b", extra: { nested: [1, { deep: "é" }] } })
        yield* tokens.save(key, saved)
        const stored = yield* place.readToken(key)
        expect(stored).toBe(JSON.stringify(saved))
        expect(Buffer.byteLength(stored!)).toBe(storedTokenBytes(saved))
        const nested = JSON.parse(`${'{"a":'.repeat(2_000)}1${"}".repeat(2_000)}`) as unknown
        const deep = token({ nested })
        yield* tokens.save(key, deep)
        expect(Buffer.byteLength((yield* place.readToken(key))!)).toBe(storedTokenBytes(deep))
        expect(yield* (yield* place.open).tokens.get(key)).toEqual(deep)
      })
    )

    it.scoped("keeps any name apart from every other, nothing outside the data directory", () =>
      Effect.gen(function* () {
        const { root, dataDir, place } = yield* workspace
        const { tokens, keys } = yield* place.open
        const evil = ["../x", "a/b", "a:b", "%2e%2e", ".", "..", "a\0b", "../../escape", "/abs", ""]
        for (const name of evil) {
          yield* tokens.save(
            { provider: name, bucket: name },
            token({ access_token: `at-${encodeName(name)}` })
          )
          yield* tokens.save({ provider: "p", bucket: name }, token())
          yield* keys.set(name, `value-${encodeName(name)}`)
        }
        for (const file of yield* Effect.promise(() => walk(root))) {
          expect(file === dataDir || file.startsWith(dataDir + path.sep)).toBe(true)
          expect(path.basename(file)).not.toBe("escape")
        }
        expect(yield* tokens.listProviders()).toEqual([...new Set([...evil, "p"])].sort())
        expect(yield* tokens.listBuckets("p")).toEqual([...evil].sort())
        expect(yield* keys.list()).toEqual([...evil].sort())
        const fresh = yield* place.open
        for (const name of evil) {
          expect((yield* fresh.tokens.get({ provider: name, bucket: name }))?.access_token).toBe(
            `at-${encodeName(name)}`
          )
          expect(yield* fresh.tokens.listBuckets(name)).toEqual([name])
          expect(yield* fresh.keys.get(name)).toBe(`value-${encodeName(name)}`)
        }
      })
    )

    it.scoped(
      "a stored value that is not a valid token fails as Corrupt, naming the field, never the contents",
      () =>
        Effect.gen(function* () {
          const { place } = yield* workspace
          const { tokens } = yield* place.open
          yield* place.writeToken(key, "{ not json SECRET-1")
          const corrupt = asStoreFailure(yield* Effect.flip(tokens.get(key)))
          expect(corrupt).toMatchObject({ operation: "get", reason: "Corrupt" })
          expect(JSON.stringify(corrupt) + corrupt.message).not.toContain("SECRET")
          const other = { provider: "anthropic", bucket: "b2" }
          yield* place.writeToken(
            other,
            JSON.stringify({ access_token: 5, refresh_token: 77, secret: "SECRET-2" })
          )
          const invalid = asStoreFailure(yield* Effect.flip(tokens.getLatest(other)))
          expect(invalid).toMatchObject({
            operation: "get",
            reason: "Corrupt",
            issue: { path: ["access_token"] }
          })
          expect(invalid.message).toContain("access_token")
          expect(JSON.stringify(invalid) + invalid.message).not.toContain("SECRET")
        })
    )

    it.scoped("holds what it read (the same object) and sees another program's writes after 500 ms", () =>
      Effect.gen(function* () {
        const { place } = yield* workspace
        const { tokens } = yield* place.open
        yield* place.writeToken(key, JSON.stringify(token({ access_token: "first" })))
        expect(tokens.cached(key)).toEqual(Option.none())
        const first = yield* tokens.get(key)
        expect(first?.access_token).toBe("first")
        expect(Option.getOrThrow(tokens.cached(key))).toBe(first)
        expect(yield* tokens.get(key)).toBe(first)

        // Unchanged: after the interval it is checked again, and still the same object.
        yield* TestClock.adjust(STORE_REVALIDATE_MS)
        expect(Option.isNone(tokens.cached(key))).toBe(true)
        expect(yield* tokens.get(key)).toBe(first)
        expect(Option.getOrThrow(tokens.cached(key))).toBe(first)

        // Another program writes: not seen until the interval has passed, then seen.
        yield* place.writeToken(key, JSON.stringify(token({ access_token: "second" })))
        expect(yield* tokens.get(key)).toBe(first)
        yield* TestClock.adjust(STORE_REVALIDATE_MS - 1)
        expect(Option.getOrThrow(tokens.cached(key))).toBe(first)
        yield* TestClock.adjust(1)
        const second = yield* tokens.get(key)
        expect(second?.access_token).toBe("second")
        expect(Option.getOrThrow(tokens.cached(key))).toBe(second)

        // Removed by another program: known absent.
        yield* place.removeToken(key)
        yield* TestClock.adjust(STORE_REVALIDATE_MS)
        expect(yield* tokens.get(key)).toBeUndefined()
        expect(tokens.cached(key)).toEqual(Option.some(undefined))
      })
    )

    it.scoped("shows its own writes and removals at once; getLatest reads the backing store now", () =>
      Effect.gen(function* () {
        const { place } = yield* workspace
        const { tokens } = yield* place.open
        expect(yield* tokens.get(key)).toBeUndefined()
        const saved = token()
        yield* tokens.save(key, saved)
        expect(Option.getOrThrow(tokens.cached(key))).toBe(saved)
        expect(yield* tokens.get(key)).toBe(saved)
        // Unchanged: getLatest keeps the object too.
        expect(yield* tokens.getLatest(key)).toBe(saved)

        yield* place.writeToken(key, JSON.stringify(token({ access_token: "from-elsewhere" })))
        expect(yield* tokens.get(key)).toBe(saved)
        expect((yield* tokens.getLatest(key))?.access_token).toBe("from-elsewhere")
        expect((yield* tokens.get(key))?.access_token).toBe("from-elsewhere")

        yield* tokens.remove(key)
        expect(tokens.cached(key)).toEqual(Option.some(undefined))
        expect(yield* tokens.get(key)).toBeUndefined()
        expect(yield* tokens.listProviders()).toEqual([])
        yield* tokens.remove(key)
      })
    )

    it.scoped("while one check of a stale entry is under way, other reads are answered from memory", () =>
      Effect.gen(function* () {
        const { place } = yield* workspace
        const { tokens } = yield* place.open
        yield* tokens.save(key, token())
        yield* TestClock.adjust(`${STORE_REVALIDATE_MS + 100} millis`)
        expect(Option.isNone(tokens.cached(key))).toBe(true)
        // Started at once: it runs until it waits for the backing store, and marks the entry as being checked.
        const check = Effect.runFork(tokens.get(key), { immediate: true })
        expect(tokens.cached(key)).toEqual(Option.some(token()))
        expect(yield* Fiber.join(check)).toEqual(token())
        expect(Option.isSome(tokens.cached(key))).toBe(true)
        yield* TestClock.adjust("1 second")
        expect(Option.isNone(tokens.cached(key))).toBe(true)
      })
    )

    it.scoped("lists providers and buckets with tokens, sorted, and filters before it shows", () =>
      Effect.gen(function* () {
        const { place } = yield* workspace
        const { tokens } = yield* place.open
        for (const [provider, bucket] of [
          ["p1", "b2"],
          ["p1", "b1"],
          ["p2", "b1"],
          ["p3", "x"]
        ] as const) {
          yield* tokens.save({ provider, bucket }, token())
        }
        expect(yield* tokens.listProviders()).toEqual(["p1", "p2", "p3"])
        expect(yield* tokens.listBuckets("p1")).toEqual(["b1", "b2"])
        expect(yield* tokens.listBuckets("unknown")).toEqual([])
        const filter = { provider: (p: string) => p !== "p2", token: (_: string, b: string) => b === "b1" }
        expect(yield* tokens.listProviders(filter)).toEqual(["p1"])
        yield* tokens.remove({ provider: "p2", bucket: "b1" })
        expect(yield* tokens.listProviders()).toEqual(["p1", "p3"])
        // Another opening sees the same.
        expect(yield* (yield* place.open).tokens.listProviders()).toEqual(["p1", "p3"])
      })
    )

    it.live("the lock excludes a second holder in this process until the first scope closes", () =>
      Effect.scoped(
        Effect.gen(function* () {
          const { place } = yield* workspace
          const { tokens } = yield* place.open
          const events: Array<string> = []
          const acquired = yield* Deferred.make<void>()
          const releaseFirst = yield* Deferred.make<void>()
          const first = yield* Effect.fork(
            Effect.scoped(
              Effect.gen(function* () {
                yield* tokens.lock(key)
                events.push("first acquired")
                yield* Deferred.succeed(acquired, undefined)
                yield* Deferred.await(releaseFirst)
                events.push("first releasing")
              })
            )
          )
          yield* Deferred.await(acquired)
          const second = yield* Effect.fork(
            Effect.scoped(
              tokens.lock(key).pipe(Effect.tap(() => Effect.sync(() => events.push("second acquired"))))
            )
          )
          // A waiter that gives up must not disturb the others; another key is independent.
          const quitter = yield* Effect.fork(Effect.scoped(tokens.lock(key)))
          yield* Effect.scoped(tokens.lock({ provider: "anthropic", bucket: "other" })).pipe(
            Effect.timeout("2 seconds")
          )
          yield* Effect.sleep("200 millis")
          expect(events).toEqual(["first acquired"])
          yield* Fiber.interrupt(quitter)
          yield* Deferred.succeed(releaseFirst, undefined)
          yield* Fiber.join(first)
          yield* Fiber.join(second).pipe(Effect.timeout("5 seconds"))
          expect(events).toEqual(["first acquired", "first releasing", "second acquired"])
          // Everything was given back: the lock is free, and nothing of it is left on disk.
          yield* Effect.scoped(tokens.lock(key)).pipe(Effect.timeout("2 seconds"))
          const left = yield* Effect.promise(() =>
            fs.stat(`${place.lockTarget(key)}.lock`).then(
              () => true,
              () => false
            )
          )
          expect(left).toBe(false)
        })
      )
    )

    it.live("the lock waits for a holder in another process", () =>
      Effect.scoped(
        Effect.gen(function* () {
          const { dataDir, place } = yield* workspace
          const { tokens } = yield* place.open
          const target = place.lockTarget(key)
          const marker = path.join(dataDir, "child-done")
          yield* Effect.promise(() => fs.mkdir(path.dirname(target), { recursive: true }))
          const script = `
            const lockfile = require(process.env.LOCKFILE_MODULE)
            const fs = require("node:fs")
            lockfile.lock(process.env.TARGET, JSON.parse(process.env.LOCK_OPTIONS)).then(async (release) => {
              process.stdout.write("locked\\n")
              await new Promise((resolve) => setTimeout(resolve, 500))
              fs.writeFileSync(process.env.MARKER, "done")
              await release()
            }, (error) => { console.error(error); process.exit(3) })
          `
          const child = spawn(process.execPath, ["-e", script], {
            env: {
              ...process.env,
              LOCKFILE_MODULE: createRequire(import.meta.url).resolve("proper-lockfile"),
              LOCK_OPTIONS: JSON.stringify(LOCK_OPTIONS),
              TARGET: target,
              MARKER: marker
            },
            stdio: ["ignore", "pipe", "inherit"]
          })
          const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)))
          yield* Effect.addFinalizer(() => Effect.sync(() => child.kill("SIGKILL")))
          yield* Effect.promise(
            () =>
              new Promise<void>((resolve, reject) => {
                child.stdout.on("data", (chunk: Buffer) => {
                  if (chunk.toString().includes("locked")) resolve()
                })
                child.on("exit", () => reject(new Error("child exited before locking")))
              })
          )
          // A waiter interrupted meanwhile stops at once.
          const quitter = yield* Effect.fork(Effect.scoped(tokens.lock(key)))
          yield* Effect.sleep("100 millis")
          const interruptedAt = Date.now()
          yield* Fiber.interrupt(quitter)
          expect(Date.now() - interruptedAt).toBeLessThan(100)
          const started = Date.now()
          yield* Effect.scoped(
            Effect.gen(function* () {
              yield* tokens.lock(key)
              const childDone = yield* Effect.promise(() =>
                fs.readFile(marker, "utf8").then(
                  () => true,
                  () => false
                )
              )
              expect(childDone).toBe(true)
            })
          ).pipe(Effect.timeout("10 seconds"))
          expect(Date.now() - started).toBeGreaterThanOrEqual(200)
          expect(yield* Effect.promise(() => exited)).toBe(0)
        })
      )
    )

    it.scoped(
      "round-trips keys with has, list and remove; another program's removal shows after 500 ms",
      () =>
        Effect.gen(function* () {
          const { place } = yield* workspace
          const { keys } = yield* place.open
          expect(yield* keys.list()).toEqual([])
          expect(yield* keys.has("openai")).toBe(false)
          yield* keys.set("openai", "sk-openai\n")
          yield* keys.set("anthropic", "sk-ant ünïcode")
          expect(yield* keys.get("openai")).toBe("sk-openai\n")
          expect(keys.cached("anthropic")).toEqual(Option.some("sk-ant ünïcode"))
          expect(yield* keys.has("anthropic")).toBe(true)
          expect(yield* keys.list()).toEqual(["anthropic", "openai"])
          const other = (yield* place.open).keys
          expect(yield* other.get("anthropic")).toBe("sk-ant ünïcode")
          expect(yield* other.has("openai")).toBe(true)
          yield* keys.remove("openai")
          yield* keys.remove("openai")
          expect(yield* keys.has("openai")).toBe(false)
          expect(yield* keys.list()).toEqual(["anthropic"])
          // The other opening still holds what it read, until the interval has passed.
          expect(yield* other.get("openai")).toBe("sk-openai\n")
          yield* TestClock.adjust(STORE_REVALIDATE_MS)
          expect(yield* other.has("openai")).toBe(false)
          yield* place.writeKey("gemini", "g-1")
          expect(yield* other.get("gemini")).toBe("g-1")
        })
    )

    it.scoped(
      "a stored value of 64 KiB is read; one byte more fails TooLarge without being served (§22)",
      () =>
        Effect.gen(function* () {
          const { place } = yield* workspace
          const { tokens } = yield* place.open
          const exactly = (bytes: number) => {
            const shell = JSON.stringify(token({ pad: "" }))
            return JSON.stringify(token({ pad: "p".repeat(bytes - shell.length) }))
          }
          yield* place.writeToken(key, exactly(MAX_VALUE_BYTES))
          expect((yield* tokens.getLatest(key))?.access_token).toBe("at-1")
          yield* place.writeToken(key, exactly(MAX_VALUE_BYTES + 1))
          expect(yield* Effect.flip(tokens.getLatest(key))).toMatchObject({ reason: "TooLarge" })
        })
    )

    it.scoped(
      "the cache holds at most 8 MiB: 200 tokens of 48 KiB; the one read after each save stays, the oldest go (§22)",
      () =>
        Effect.gen(function* () {
          const { place } = yield* workspace
          const { tokens } = yield* place.open
          const pad = "x".repeat(48 * 1024)
          const count = 200
          const keyOf = (i: number) => ({ provider: "flood", bucket: `b${i}` })
          // The same size every time: `mem-NNN` when saved, `dsk-NNN` once rewritten behind the store's back.
          const tokenOf = (source: string, i: number) =>
            token({ access_token: `${source}-${String(i).padStart(3, "0")}`, pad })
          const rewrite = (i: number) => place.writeToken(keyOf(i), JSON.stringify(tokenOf("dsk", i)))
          const source = (i: number) =>
            Effect.map(tokens.get(keyOf(i)), (found) => found?.access_token.slice(0, 3))
          yield* tokens.save(keyOf(0), tokenOf("mem", 0))
          yield* rewrite(0)
          for (let i = 1; i < count; i++) {
            yield* tokens.save(keyOf(i), tokenOf("mem", i))
            expect(yield* source(0)).toBe("mem")
          }
          for (let i = 1; i < count; i++) yield* rewrite(i)
          expect(yield* source(0)).toBe("mem")
          let oldestInMemory = count
          while (oldestInMemory > 1 && (yield* source(oldestInMemory - 1)) === "mem") oldestInMemory--
          const kept = 1 + count - oldestInMemory
          const entryBytes = storedTokenBytes(tokenOf("mem", 0)) + 64
          expect(kept).toBeGreaterThanOrEqual(Math.floor((0.9 * DEFAULT_MAX_BYTES) / entryBytes))
          expect(kept).toBeLessThanOrEqual(Math.floor(DEFAULT_MAX_BYTES / entryBytes))
          expect(kept).toBeLessThan(count)
          for (let i = 1; i < oldestInMemory; i++) expect(yield* source(i)).toBe("dsk")
        }),
      120_000
    )

    // On gnome-keyring every new entry costs a D-Bus connection and its key exchange: 2,000 of them take
    // minutes on a busy machine. The keyring's cap is shown at a small limit in keyring-store.test.ts.
    it.scoped.skipIf(backend.name === "keyring")(
      "listings read at most 1,000 entries: 1,010 buckets and 1,010 keys stored, 1,000 of each listed (§22)",
      () =>
        Effect.gen(function* () {
          const { place } = yield* workspace
          const { tokens, keys } = yield* place.open
          const names = Array.from({ length: LISTING_LIMIT + 10 }, (_, i) => `n${String(i).padStart(4, "0")}`)
          const body = JSON.stringify(token())
          yield* Effect.forEach(
            names,
            (name) =>
              Effect.zipRight(
                place.writeToken({ provider: "many", bucket: name }, body),
                place.writeKey(name, "sk")
              ),
            { concurrency: 8, discard: true }
          )
          expect(LISTING_LIMIT).toBe(1_000)
          const buckets = yield* tokens.listBuckets("many")
          expect(buckets).toHaveLength(1_000)
          expect(buckets.every((name) => names.includes(name))).toBe(true)
          expect(yield* keys.list()).toHaveLength(1_000)
        }),
      120_000
    )
  })
}

describe("the store cache both stores read through", () => {
  it.scoped("a burst of reads of one stale entry costs one look at the backing store", () =>
    Effect.gen(function* () {
      let looks = 0
      const gate = yield* Deferred.make<void>()
      const cache = makeStoreCache<string>({ clock: yield* Effect.clock, decode: Either.right })
      const look: Look = () =>
        Effect.zipRight(
          Effect.sync(() => looks++),
          Effect.as(Deferred.await(gate), {
            _tag: "Read",
            stamp: valueStamp("v"),
            text: "v",
            bytes: 1
          } as const)
        )
      const readers = yield* Effect.forEach(Array.from({ length: 50 }), () =>
        Effect.fork(cache.get("id", look, "id"))
      )
      yield* TestClock.adjust(1)
      expect(looks).toBe(1)
      yield* Deferred.succeed(gate, undefined)
      for (const reader of readers) expect(yield* Fiber.join(reader)).toBe("v")
      // Under the lock, getLatest looks again whatever is under way.
      expect(yield* cache.revalidate("id", look, "id")).toBe("v")
      expect(looks).toBe(2)
    })
  )
})
