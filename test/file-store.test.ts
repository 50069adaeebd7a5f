import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import * as TestClock from "effect/TestClock"
import * as fc from "fast-check"
import * as FileKeyStorage from "../src/layers/FileKeyStorage.js"
import * as FileTokenStore from "../src/layers/FileTokenStore.js"
import { ensureDirAsync, writeFileAtomic } from "../src/layers/file-store/atomic-file.js"
import { openStoreDir } from "../src/layers/file-store/store-dir.js"
import { STORE_REVALIDATE_MS } from "../src/layers/store-cache/store-cache.js"
import * as KeyedLock from "../src/lib/keyed-lock.js"
import { decodeName, encodeName } from "../src/lib/name-encoding.js"
import { isValidName } from "../src/protocol/names.js"
import type { OAuthToken } from "../src/protocol/token.js"
import type { TokenKey } from "../src/services/TokenStore.js"

/** A temp directory for one test, removed when the test's scope closes. */
const tempRoot = Effect.acquireRelease(
  Effect.promise(() => fs.mkdtemp(path.join(os.tmpdir(), "credproxy-store-"))),
  (root) => Effect.promise(() => fs.rm(root, { recursive: true, force: true }))
)

const tokenPath = (dataDir: string, key: TokenKey): string =>
  path.join(dataDir, "tokens", key.provider, `${key.bucket}.json`)

const modeOf = (file: string) => Effect.promise(() => fs.stat(file)).pipe(Effect.map((s) => s.mode & 0o777))

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

const token = (overrides: Partial<OAuthToken> = {}): OAuthToken => ({
  access_token: "at-1",
  expiry: 2_000_000_000,
  token_type: "Bearer",
  refresh_token: "rt-1",
  ...overrides
})

const writeExternally = (file: string, value: unknown) =>
  Effect.promise(async () => {
    await fs.mkdir(path.dirname(file), { recursive: true })
    await fs.writeFile(file, typeof value === "string" ? value : JSON.stringify(value))
  })

describe("name encoding", () => {
  it("keeps valid names as they are", () => {
    for (const name of ["anthropic", "default", "a.b", "user@example.com", "x+y", "A_b-9", "a..b"]) {
      expect(isValidName(name)).toBe(true)
      expect(encodeName(name)).toBe(name)
      expect(decodeName(name)).toBe(name)
    }
  })

  it("encodes dangerous names into one harmless segment", () => {
    const cases: Array<[string, string]> = [
      ["../x", "%2E.%2Fx"],
      ["a/b", "a%2Fb"],
      ["%2e%2e", "%252e%252e"],
      [".", "%2E"],
      ["..", "%2E."],
      ["a\0b", "a%00b"],
      ["", "%"],
      ["a\\b", "a%5Cb"],
      ["é", "%C3%A9"]
    ]
    for (const [name, encoded] of cases) {
      expect(encodeName(name)).toBe(encoded)
      expect(decodeName(encoded)).toBe(name)
    }
  })

  it("round-trips any string, lone surrogates included, to a safe segment", () => {
    const anyUnits = fc.string({
      unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c))
    })
    const anyCodePoints = fc.string({ unit: "binary" })
    for (const arbitrary of [anyUnits, anyCodePoints]) {
      fc.assert(
        fc.property(arbitrary, (name) => {
          const segment = encodeName(name)
          expect(segment).toMatch(/^[A-Za-z0-9_@+.%-]+$/)
          expect(segment.startsWith(".")).toBe(false)
          expect(decodeName(segment)).toBe(name)
        })
      )
    }
  })

  it("rejects segments encodeName never produces", () => {
    for (const segment of ["%41", "%2e", "%zz", "%4", ".hidden", "a/b", "%C3", "%ED%A0%80%ED%B0%80", "%%"]) {
      expect(decodeName(segment)).toBeUndefined()
    }
  })
})

describe("atomic-file", () => {
  it.scoped("removes the temp file when the write fails", () =>
    Effect.gen(function* () {
      const root = yield* tempRoot
      const dir = yield* openStoreDir(root, "keys")
      yield* Effect.promise(() => fs.mkdir(path.join(root, "keys", "occupied", "child"), { recursive: true }))
      const error = yield* Effect.flip(writeFileAtomic("save", dir, "occupied", "data"))
      expect(error._tag).toBe("StoreFailure")
      const names = yield* Effect.promise(() => fs.readdir(path.join(root, "keys")))
      expect(names).toEqual(["occupied"])
    })
  )

  it.scoped("creates missing directories 0700 and leaves existing ones alone", () =>
    Effect.gen(function* () {
      const root = yield* tempRoot
      yield* Effect.promise(() => fs.chmod(root, 0o755))
      yield* Effect.promise(() => ensureDirAsync(path.join(root, "a", "b")))
      expect(yield* modeOf(root)).toBe(0o755)
      expect(yield* modeOf(path.join(root, "a"))).toBe(0o700)
      expect(yield* modeOf(path.join(root, "a", "b"))).toBe(0o700)
    })
  )
})

/** What every store must do is in store-conformance.test.ts, run on this store too; here, what is the file store's own. */
describe("FileTokenStore", () => {
  const key: TokenKey = { provider: "anthropic", bucket: "default" }

  it.scoped("creates directories 0700 and files 0600", () =>
    Effect.gen(function* () {
      const root = yield* tempRoot
      const dataDir = path.join(root, "nested", "data")
      const store = yield* FileTokenStore.make(dataDir)
      yield* store.save(key, token())
      expect(yield* modeOf(path.join(root, "nested"))).toBe(0o700)
      expect(yield* modeOf(dataDir)).toBe(0o700)
      expect(yield* modeOf(path.join(dataDir, "tokens"))).toBe(0o700)
      expect(yield* modeOf(path.join(dataDir, "tokens", "anthropic"))).toBe(0o700)
      expect(yield* modeOf(tokenPath(dataDir, key))).toBe(0o600)
    })
  )

  it.scoped("keeps names that would escape inside the data directory", () =>
    Effect.gen(function* () {
      const root = yield* tempRoot
      const dataDir = path.join(root, "data")
      const store = yield* FileTokenStore.make(dataDir)
      const keys = yield* FileKeyStorage.make(dataDir)
      const evil = ["../x", "a/b", "%2e%2e", ".", "..", "a\0b", "../../escape", "/abs", ""]
      for (const name of evil) {
        yield* store.save({ provider: name, bucket: name }, token({ access_token: `at-${encodeName(name)}` }))
        yield* store.save({ provider: "p", bucket: name }, token())
        yield* keys.set(name, "value")
      }
      const all = yield* Effect.promise(() => walk(root))
      for (const file of all) expect(file === dataDir || file.startsWith(dataDir + path.sep)).toBe(true)
      expect(all.some((file) => path.basename(file) === "escape")).toBe(false)

      expect(yield* store.listProviders()).toEqual([...new Set([...evil, "p"])].sort())
      expect(yield* store.listBuckets("p")).toEqual([...evil].sort())
      expect(yield* keys.list()).toEqual([...evil].sort())
      const fresh = yield* FileTokenStore.make(dataDir)
      for (const name of evil) {
        const found = yield* fresh.get({ provider: name, bucket: name })
        expect(found?.access_token).toBe(`at-${encodeName(name)}`)
        expect(yield* fresh.listBuckets(name)).toEqual([name])
      }
    })
  )

  it.scoped(
    "holds what it read for synchronous reads (the same object) and sees external writes after the revalidation interval",
    () =>
      Effect.gen(function* () {
        const dataDir = path.join(yield* tempRoot, "data")
        const store = yield* FileTokenStore.make(dataDir)
        const file = tokenPath(dataDir, key)
        yield* writeExternally(file, token({ access_token: "first" }))

        expect(store.cached(key)).toEqual(Option.none())
        const first = yield* store.get(key)
        expect(first?.access_token).toBe("first")
        expect(store.cached(key)).toEqual(Option.some(first))
        expect(Option.getOrThrow(store.cached(key))).toBe(first)
        expect(yield* store.get(key)).toBe(first)

        // Unchanged file: after the interval it is re-checked, and still the same object.
        yield* TestClock.adjust(STORE_REVALIDATE_MS)
        expect(Option.isNone(store.cached(key))).toBe(true)
        expect(yield* store.get(key)).toBe(first)
        expect(Option.getOrThrow(store.cached(key))).toBe(first)

        // Another process rewrites the file in place: not seen until the interval has passed.
        yield* writeExternally(file, token({ access_token: "second-and-longer" }))
        expect(yield* store.get(key)).toBe(first)
        yield* TestClock.adjust(STORE_REVALIDATE_MS - 1)
        expect(Option.getOrThrow(store.cached(key))).toBe(first)
        expect(yield* store.get(key)).toBe(first)
        yield* TestClock.adjust(1)
        const second = yield* store.get(key)
        expect(second?.access_token).toBe("second-and-longer")
        expect(Option.getOrThrow(store.cached(key))).toBe(second)

        // Another credproxy replaces it by rename with a same-size token (new inode).
        const replacement = path.join(path.dirname(file), "replacement")
        yield* writeExternally(replacement, token({ access_token: "third--and-longer" }))
        yield* Effect.promise(() => fs.rename(replacement, file))
        yield* TestClock.adjust(STORE_REVALIDATE_MS)
        expect((yield* store.get(key))?.access_token).toBe("third--and-longer")

        // Removed by another process: known absent.
        yield* Effect.promise(() => fs.rm(file))
        yield* TestClock.adjust(STORE_REVALIDATE_MS)
        expect(yield* store.get(key)).toBeUndefined()
        expect(store.cached(key)).toEqual(Option.some(undefined))
      })
  )

  it.scoped("lists only token files, ignoring temp files, lock directories and strays", () =>
    Effect.gen(function* () {
      const dataDir = path.join(yield* tempRoot, "data")
      const store = yield* FileTokenStore.make(dataDir)
      yield* store.save({ provider: "p1", bucket: "b2" }, token())
      yield* store.save({ provider: "p1", bucket: "b1" }, token())
      yield* store.save({ provider: "p2", bucket: "b1" }, token())
      const tokens = path.join(dataDir, "tokens")
      yield* Effect.promise(async () => {
        await fs.writeFile(path.join(tokens, "p1", ".b3.json.0123abcd.tmp"), "{}")
        await fs.mkdir(path.join(tokens, "p1", "b4.json.lock"))
        await fs.writeFile(path.join(tokens, "p1", "notes.txt"), "x")
        await fs.writeFile(path.join(tokens, "p1", "%41.json"), "{}")
        await fs.mkdir(path.join(tokens, "p3", "x.json.lock"), { recursive: true })
        await fs.writeFile(path.join(tokens, "p3", ".hidden.json"), "{}")
        await fs.mkdir(path.join(tokens, ".tmp"))
        await fs.writeFile(path.join(tokens, ".tmp", "a.json"), "{}")
        await fs.writeFile(path.join(tokens, "stray.json"), "{}")
      })
      expect(yield* store.listProviders()).toEqual(["p1", "p2"])
      expect(yield* store.listBuckets("p1")).toEqual(["b1", "b2"])
      expect(yield* store.listBuckets("p3")).toEqual([])
      expect(yield* store.listBuckets("unknown")).toEqual([])
      expect(yield* store.listBuckets("stray.json")).toEqual([])

      yield* store.remove({ provider: "p2", bucket: "b1" })
      expect(yield* store.listProviders()).toEqual(["p1"])
      // The emptied provider directory is gone.
      const exists = yield* Effect.promise(() =>
        fs.stat(path.join(tokens, "p2")).then(
          () => true,
          () => false
        )
      )
      expect(exists).toBe(false)
    })
  )

  it.live("recovers a stale lock left by a dead process", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const dataDir = path.join(yield* tempRoot, "data")
        const store = yield* FileTokenStore.make(dataDir)
        const lockDir = tokenPath(dataDir, key) + ".lock"
        yield* Effect.promise(async () => {
          await fs.mkdir(lockDir, { recursive: true })
          const old = new Date(Date.now() - 60_000)
          await fs.utimes(lockDir, old, old)
        })
        const started = Date.now()
        yield* Effect.scoped(store.lock(key)).pipe(Effect.timeout("5 seconds"))
        expect(Date.now() - started).toBeLessThan(5_000)
        const left = yield* Effect.promise(() =>
          fs.stat(lockDir).then(
            () => true,
            () => false
          )
        )
        expect(left).toBe(false)
      })
    )
  )

  it.scoped(
    "a data directory below a file is refused (NotADirectory); one that cannot be resolved is a StoreFailure",
    () =>
      Effect.gen(function* () {
        const belowFile = yield* Effect.flip(Effect.scoped(FileTokenStore.make("/dev/null/credproxy")))
        expect(belowFile).toMatchObject({
          _tag: "DataDirRefused",
          dir: "/dev/null",
          problem: "NotADirectory"
        })
        const loop = path.join(yield* tempRoot, "loop")
        yield* Effect.promise(() => fs.symlink(loop, loop))
        const unresolvable = yield* Effect.flip(Effect.scoped(FileTokenStore.make(loop)))
        expect(unresolvable).toMatchObject({ _tag: "StoreFailure", reason: "Io", code: "ELOOP" })
      })
  )
})

describe("temp files left by a killed writer", () => {
  it.live("are removed when a store opens, once older than a minute; fresh ones are left alone", () =>
    Effect.gen(function* () {
      const dataDir = yield* tempRoot
      const providerDir = path.join(dataDir, "tokens", "anthropic")
      const keysDir = path.join(dataDir, "keys")
      yield* Effect.promise(async () => {
        await fs.mkdir(providerDir, { recursive: true })
        await fs.mkdir(keysDir, { recursive: true })
      })
      const stale = path.join(providerDir, ".default.json.0123456789abcdef.tmp")
      const fresh = path.join(providerDir, ".work.json.fedcba9876543210.tmp")
      const staleKey = path.join(keysDir, ".openai.key.0011223344556677.tmp")
      const unrelated = path.join(providerDir, ".notes")
      const old = new Date(Date.now() - 5 * 60_000)
      yield* Effect.promise(async () => {
        for (const file of [stale, fresh, staleKey, unrelated])
          await fs.writeFile(file, "{}", { mode: 0o600 })
        for (const file of [stale, staleKey, unrelated]) await fs.utimes(file, old, old)
      })
      yield* FileTokenStore.make(dataDir)
      yield* FileKeyStorage.make(dataDir)
      const left = yield* Effect.promise(() => walk(dataDir))
      expect(left).not.toContain(stale)
      expect(left).not.toContain(staleKey)
      expect(left).toContain(fresh)
      expect(left).toContain(unrelated)
    }).pipe(Effect.scoped)
  )
})

describe("FileKeyStorage", () => {
  it.scoped("round-trips keys with has, list and remove", () =>
    Effect.gen(function* () {
      const dataDir = path.join(yield* tempRoot, "data")
      const keys = yield* FileKeyStorage.make(dataDir)
      expect(yield* keys.list()).toEqual([])
      expect(yield* keys.has("openai")).toBe(false)
      yield* keys.set("openai", "sk-openai\n")
      yield* keys.set("anthropic", "sk-ant ünïcode")
      expect(yield* keys.get("openai")).toBe("sk-openai\n")
      expect(keys.cached("anthropic")).toEqual(Option.some("sk-ant ünïcode"))
      expect(yield* keys.has("anthropic")).toBe(true)
      expect(yield* keys.list()).toEqual(["anthropic", "openai"])
      expect(yield* modeOf(path.join(dataDir, "keys"))).toBe(0o700)
      expect(yield* modeOf(path.join(dataDir, "keys", "openai.key"))).toBe(0o600)
      expect(
        yield* Effect.promise(() => fs.readFile(path.join(dataDir, "keys", "anthropic.key"), "utf8"))
      ).toBe("sk-ant ünïcode")

      // Another process's view.
      const other = yield* FileKeyStorage.make(dataDir)
      expect(yield* other.get("anthropic")).toBe("sk-ant ünïcode")
      expect(yield* other.has("openai")).toBe(true)

      yield* keys.remove("openai")
      yield* keys.remove("openai")
      expect(yield* keys.has("openai")).toBe(false)
      expect(yield* keys.get("openai")).toBeUndefined()
      expect(yield* keys.list()).toEqual(["anthropic"])

      // An external removal shows after the revalidation interval.
      expect(yield* other.has("openai")).toBe(true)
      expect(yield* other.get("openai")).toBe("sk-openai\n")
      yield* TestClock.adjust(STORE_REVALIDATE_MS)
      expect(yield* other.has("openai")).toBe(false)
    })
  )
})

describe("keyed lock", () => {
  it.scoped(
    "one holder per key, released with its scope; a waiter can be interrupted and takes nothing",
    () =>
      Effect.gen(function* () {
        const locks = yield* KeyedLock.make
        const first = yield* Scope.make()
        yield* locks.acquire("a").pipe(Scope.extend(first))
        // Another key is free.
        yield* Effect.scoped(locks.acquire("b"))
        const waiter = yield* Effect.fork(Effect.scoped(locks.acquire("a")))
        yield* TestClock.adjust("1 second")
        expect(waiter.unsafePoll()).toBeNull()
        yield* Fiber.interrupt(waiter)
        const second = yield* Effect.fork(Effect.scoped(locks.acquire("a")))
        yield* Scope.close(first, Exit.void)
        yield* Fiber.join(second)
        // Nothing is left held: the key can be taken again at once.
        yield* Effect.scoped(locks.acquire("a"))
      })
  )
})
