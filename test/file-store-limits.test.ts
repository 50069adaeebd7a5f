import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as HashMap from "effect/HashMap"
import * as Logger from "effect/Logger"
import * as Option from "effect/Option"
import * as FileKeyStorage from "../src/layers/FileKeyStorage.js"
import * as FileTokenStore from "../src/layers/FileTokenStore.js"
import { MAX_FILE_BYTES, readAtMost, readFileIfChanged } from "../src/layers/file-store/file-read.js"
import { type Look, makeStoreCache } from "../src/layers/store-cache/store-cache.js"
import type { OAuthToken } from "../src/protocol/token.js"
import { LISTING_LIMIT } from "../src/services/TokenStore.js"

/**
 * The file stores' own bounds and refusals (PROTOCOL.md §22; those every
 * store shares are in store-conformance.test.ts) on real files in a
 * temp directory: token files as compact JSON, the 8 MiB cache (least
 * recently used dropped first), the 64 KiB read limit, the 1,000-entry
 * listings, directories moved during key writes, and symbolic links where a
 * token, key, lock or the `tokens` directory belongs. Entries stay fresh
 * under the TestClock, so the only way the stores go back to the disk is an
 * eviction, and a value read from the disk is told apart by its contents.
 */

const tempRoot = Effect.acquireRelease(
  Effect.promise(() => fs.mkdtemp(path.join(os.tmpdir(), "credproxy-limits-"))),
  (root) => Effect.promise(() => fs.rm(root, { recursive: true, force: true }))
)

/** A fresh data directory (not created: the stores create it) and a directory outside it. */
const workspace = Effect.map(tempRoot, (root) => ({
  dataDir: path.join(root, "data"),
  outside: path.join(root, "outside")
}))

const token = (fields: Record<string, unknown> = {}): OAuthToken => ({
  access_token: "at-1",
  expiry: 2_000_000_000,
  token_type: "Bearer",
  refresh_token: "rt-1",
  ...fields
})

const key = { provider: "anthropic", bucket: "default" }

const promise = <A>(f: () => Promise<A>) => Effect.promise(f)

interface LogLine {
  readonly message: string
  readonly entry: string | undefined
}

/** Runs `effect` with every log line kept in `lines` (message and `entry` annotation). */
const withLogs = <A, E, R>(lines: Array<LogLine>, effect: Effect.Effect<A, E, R>) =>
  Effect.provide(
    effect,
    Logger.replace(
      Logger.defaultLogger,
      Logger.make(({ message, annotations }) => {
        lines.push({
          message: String([message].flat()[0]),
          entry: Option.getOrUndefined(HashMap.get(annotations, "entry")) as string | undefined
        })
      })
    )
  )

const LINK_IGNORED = "symbolic link in the store ignored"

describe("the cache holds at most 8 MiB, least recently used dropped first (§22)", () => {
  it.scoped(
    "a small budget: a read keeps an entry, the least recently used one is read again from disk",
    () =>
      Effect.gen(function* () {
        const { dataDir } = yield* workspace
        yield* promise(() => fs.mkdir(dataDir))
        const size = 1_000
        for (const id of ["a", "b", "c", "d"]) {
          yield* promise(() => fs.writeFile(path.join(dataDir, id), id.repeat(size)))
        }
        const reads: Array<string> = []
        const look =
          (id: string): Look =>
          (before) =>
            promise(() => {
              reads.push(id)
              return readFileIfChanged(path.join(dataDir, id), before)
            })
        // Room for three entries (contents plus 64 bytes of bookkeeping each) once a tenth of the
        // budget is freed on passing it, not for four.
        const maxBytes = Math.floor(3.5 * (size + 64))
        const cache = makeStoreCache<string>({ clock: yield* Effect.clock, decode: Either.right, maxBytes })
        const get = (id: string) => cache.get(id, look(id), id)
        for (const id of ["a", "b", "c"]) yield* get(id)
        expect(reads).toEqual(["a", "b", "c"])
        // `a` is used again: `b` becomes the least recently used, and `d` pushes it out.
        yield* get("a")
        yield* get("d")
        expect(reads).toEqual(["a", "b", "c", "d"])
        expect(cache.bytes()).toBeLessThanOrEqual(0.9 * maxBytes)
        for (const id of ["a", "c", "d"]) yield* get(id)
        expect(reads).toEqual(["a", "b", "c", "d"])
        expect(yield* get("b")).toBe("b".repeat(size))
        expect(reads).toEqual(["a", "b", "c", "d", "b"])
      })
  )
})

describe("the largest store file read is 64 KiB (§22)", () => {
  it.scoped("64 KiB reads; one byte more, or a 2 GiB sparse file, fails TooLarge without being read", () =>
    Effect.gen(function* () {
      const { dataDir } = yield* workspace
      const store = yield* FileTokenStore.make(dataDir)
      yield* store.save(key, token())
      const file = path.join(dataDir, "tokens", "anthropic", "default.json")
      const exactly = (bytes: number) => {
        const shell = JSON.stringify(token({ pad: "" }))
        return JSON.stringify(token({ pad: "p".repeat(bytes - shell.length) }))
      }
      yield* promise(() => fs.writeFile(file, exactly(MAX_FILE_BYTES)))
      expect((yield* store.getLatest(key))?.access_token).toBe("at-1")
      yield* promise(() => fs.writeFile(file, exactly(MAX_FILE_BYTES + 1)))
      expect(yield* Effect.flip(store.getLatest(key))).toMatchObject({ reason: "TooLarge" })
      yield* promise(() => fs.truncate(file, 2 ** 31))
      expect(yield* Effect.flip(store.getLatest(key))).toMatchObject({ reason: "TooLarge" })
    })
  )

  it.scoped("a file that turns out larger than its size said is cut off after 64 KiB + 1 bytes", () =>
    Effect.gen(function* () {
      const { dataDir } = yield* workspace
      yield* promise(() => fs.mkdir(dataDir))
      const file = path.join(dataDir, "big")
      yield* promise(() => fs.writeFile(file, Buffer.alloc(1024 * 1024, 0x61)))
      const handle = yield* Effect.acquireRelease(
        promise(() => fs.open(file)),
        (h) => promise(() => h.close())
      )
      let bytesRead = 0
      const counting = {
        read: async (buffer: Buffer, offset: number, length: number, position: number) => {
          const result = await handle.read(buffer, offset, length, position)
          bytesRead += result.bytesRead
          return result
        }
      } as Pick<fs.FileHandle, "read">
      expect(yield* promise(() => readAtMost(counting, MAX_FILE_BYTES))).toBeUndefined()
      expect(bytesRead).toBe(MAX_FILE_BYTES + 1)
      expect((yield* promise(() => readAtMost(handle, 2 * 1024 * 1024)))?.length).toBe(1024 * 1024)
    })
  )
})

describe("listings read at most 1,000 entries (§22)", () => {
  it.scoped("1,100 buckets, 1,100 providers and 1,100 keys on disk: 1,000 of each are listed", () =>
    Effect.gen(function* () {
      const { dataDir } = yield* workspace
      const tokens = yield* FileTokenStore.make(dataDir)
      const keys = yield* FileKeyStorage.make(dataDir)
      const names = Array.from({ length: 1_100 }, (_, i) => `n${String(i).padStart(4, "0")}`)
      const body = JSON.stringify(token())
      yield* promise(async () => {
        await fs.mkdir(path.join(dataDir, "tokens", "many"))
        for (const name of names) {
          await fs.writeFile(path.join(dataDir, "tokens", "many", `${name}.json`), body)
          await fs.mkdir(path.join(dataDir, "tokens", name))
          await fs.writeFile(path.join(dataDir, "tokens", name, "default.json"), body)
          await fs.writeFile(path.join(dataDir, "keys", `${name}.key`), "sk")
        }
      })
      expect(LISTING_LIMIT).toBe(1_000)
      const buckets = yield* tokens.listBuckets("many")
      expect(buckets).toHaveLength(1_000)
      expect(buckets.every((name) => names.includes(name))).toBe(true)
      // `many` and 1,100 others: 1,000 directories are read.
      expect(yield* tokens.listProviders()).toHaveLength(1_000)
      expect(yield* keys.list()).toHaveLength(1_000)
    })
  )
})

describe("a store directory moved during a key write (§22)", () => {
  it.scoped("a key set into `keys` moved away is undone (Moved); a removal there is refused", () =>
    Effect.gen(function* () {
      const { dataDir, outside } = yield* workspace
      const keys = yield* FileKeyStorage.make(dataDir)
      yield* keys.set("kept", "sk-kept")
      yield* promise(() => fs.rename(path.join(dataDir, "keys"), outside))
      const lines: Array<LogLine> = []
      const set = yield* withLogs(lines, Effect.flip(keys.set("openai", "sk-SECRET")))
      expect(set).toMatchObject({ _tag: "StoreFailure", operation: "set", reason: "Moved" })
      const removal = yield* withLogs(lines, Effect.flip(keys.remove("kept")))
      expect(removal).toMatchObject({ _tag: "StoreFailure", operation: "remove", reason: "Moved" })
      // Nothing written stays in the moved directory, and nothing was removed from it.
      expect((yield* promise(() => fs.readdir(outside))).sort()).toEqual(["kept.key"])
      expect(lines).toEqual([
        { message: "store directory moved during a write; the write was undone", entry: "keys" },
        { message: "store directory moved; the change was refused", entry: "keys" }
      ])
    })
  )

  it.scoped("a token saved into `tokens` moved away is undone too", () =>
    Effect.gen(function* () {
      const { dataDir, outside } = yield* workspace
      const store = yield* FileTokenStore.make(dataDir)
      yield* promise(() => fs.rename(path.join(dataDir, "tokens"), outside))
      const saved = yield* Effect.flip(store.save(key, token()))
      expect(saved).toMatchObject({ _tag: "StoreFailure", operation: "save", reason: "Moved" })
      expect(yield* promise(() => fs.readdir(path.join(outside, "anthropic")))).toEqual([])
    })
  )
})

describe("symbolic links where the store writes (§22)", () => {
  /** A file outside the store, and a link to it planted at `at`. */
  const plantLink = (outside: string, at: string) =>
    promise(async () => {
      await fs.mkdir(outside, { recursive: true })
      const target = path.join(outside, "target")
      await fs.writeFile(target, "OUTSIDE")
      await fs.rm(at, { force: true })
      await fs.symlink(target, at)
      return target
    })

  it.scoped(
    "a token save and a key set are refused (Link), logged by store-relative name; the link stays",
    () =>
      Effect.gen(function* () {
        const { dataDir, outside } = yield* workspace
        const store = yield* FileTokenStore.make(dataDir)
        const keys = yield* FileKeyStorage.make(dataDir)
        yield* store.save(key, token())
        yield* keys.set("openai", "sk-1")
        const tokenFile = path.join(dataDir, "tokens", "anthropic", "default.json")
        const keyFile = path.join(dataDir, "keys", "openai.key")
        const target = yield* plantLink(outside, tokenFile)
        yield* plantLink(outside, keyFile)
        const lines: Array<LogLine> = []
        const saved = yield* withLogs(lines, Effect.flip(store.save(key, token({ access_token: "at-2" }))))
        const set = yield* withLogs(lines, Effect.flip(keys.set("openai", "sk-2")))
        expect(saved).toMatchObject({ _tag: "StoreFailure", operation: "save", reason: "Link" })
        expect(set).toMatchObject({ _tag: "StoreFailure", operation: "set", reason: "Link" })
        expect(lines).toEqual([
          { message: LINK_IGNORED, entry: "tokens/anthropic/default.json" },
          { message: LINK_IGNORED, entry: "keys/openai.key" }
        ])
        expect(JSON.stringify(lines)).not.toContain(outside)
        for (const file of [tokenFile, keyFile]) {
          expect((yield* promise(() => fs.lstat(file))).isSymbolicLink()).toBe(true)
        }
        expect(yield* promise(() => fs.readFile(target, "utf8"))).toBe("OUTSIDE")
        // No temp file is left next to them.
        const left = [
          ...(yield* promise(() => fs.readdir(path.dirname(tokenFile)))),
          ...(yield* promise(() => fs.readdir(path.dirname(keyFile))))
        ]
        expect(left.sort()).toEqual(["default.json", "openai.key"])
      })
  )

  it.scoped(
    "a lock that is a link to an old directory outside is refused (Link), logged, and left alone",
    () =>
      Effect.gen(function* () {
        const { dataDir, outside } = yield* workspace
        const store = yield* FileTokenStore.make(dataDir)
        yield* store.save(key, token())
        const lock = path.join(dataDir, "tokens", "anthropic", "default.json.lock")
        yield* promise(async () => {
          await fs.mkdir(outside)
          // Old enough to be taken for a stale lock, were the link followed.
          const old = new Date(Date.now() - 60_000)
          await fs.utimes(outside, old, old)
          await fs.symlink(outside, lock)
        })
        const lines: Array<LogLine> = []
        const locked = yield* withLogs(lines, Effect.flip(Effect.scoped(store.lock(key))))
        expect(locked).toMatchObject({ _tag: "StoreFailure", operation: "lock", reason: "Link" })
        expect(lines).toEqual([{ message: LINK_IGNORED, entry: "tokens/anthropic/default.json.lock" }])
        expect((yield* promise(() => fs.lstat(lock))).isSymbolicLink()).toBe(true)
        expect((yield* promise(() => fs.stat(outside))).isDirectory()).toBe(true)
      })
  )

  it.scoped("`tokens` itself a link: both stores refuse the data directory (DataDirRefused, Link)", () =>
    Effect.gen(function* () {
      const { dataDir, outside } = yield* workspace
      yield* promise(async () => {
        await fs.mkdir(outside, { mode: 0o700 })
        await fs.mkdir(dataDir, { mode: 0o700 })
        await fs.symlink(outside, path.join(dataDir, "tokens"))
      })
      const refused = { _tag: "DataDirRefused", dir: path.join(dataDir, "tokens"), problem: "Link" }
      expect(yield* Effect.flip(Effect.scoped(FileTokenStore.make(dataDir)))).toMatchObject(refused)
      expect(yield* Effect.flip(Effect.scoped(FileKeyStorage.make(dataDir)))).toMatchObject(refused)
      expect(yield* promise(() => fs.readdir(outside))).toEqual([])
    })
  )

  it.scoped("a data directory path that is a regular file is refused (DataDirRefused, NotADirectory)", () =>
    Effect.gen(function* () {
      const { dataDir } = yield* workspace
      yield* promise(() => fs.writeFile(dataDir, "not a directory"))
      const refused = { _tag: "DataDirRefused", dir: dataDir, problem: "NotADirectory" }
      expect(yield* Effect.flip(Effect.scoped(FileTokenStore.make(dataDir)))).toMatchObject(refused)
      expect(yield* Effect.flip(Effect.scoped(FileKeyStorage.make(dataDir)))).toMatchObject(refused)
      expect(yield* promise(() => fs.readFile(dataDir, "utf8"))).toBe("not a directory")
    })
  )
})
