import type { Stats } from "node:fs"
import { constants } from "node:fs"
import * as fsp from "node:fs/promises"
import type * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import type * as Either from "effect/Either"
import * as Option from "effect/Option"
import { errorCode, StoreFailure } from "../../errors/errors.js"
import type { FieldIssue } from "../../protocol/parse-issue.js"

/**
 * An in-memory view of small files that is re-checked against the disk at
 * most every STORE_REVALIDATE_MS (PROTOCOL.md §14: another process's writes
 * show within 1 s). A fresh entry is read synchronously (`known`, prebuilt:
 * no I/O and no allocation), and the same value object is handed out until
 * the file changes, so callers can memoize per object.
 *
 * A change is detected by the file's stamp (inode, size, mtime). The stores
 * always replace files by rename, which gives a new inode, so their writes are
 * always seen; only an in-place rewrite by a foreign tool that keeps the size
 * within one file-system timestamp tick could go unnoticed.
 */

/** How often an entry is re-checked against the disk (well inside the 1 s visibility rule). */
export const STORE_REVALIDATE_MS = 500

/** What the disk said about a file the last time we looked. */
export type Stamp =
  | { readonly _tag: "Absent" }
  | { readonly _tag: "File"; readonly ino: number; readonly size: number; readonly mtimeMs: number }

export const ABSENT: Stamp = { _tag: "Absent" }

export const stampOf = (stats: Stats): Stamp => ({
  _tag: "File",
  ino: stats.ino,
  size: stats.size,
  mtimeMs: stats.mtimeMs
})

const sameStamp = (a: Stamp, b: Stamp): boolean =>
  a._tag === "Absent"
    ? b._tag === "Absent"
    : b._tag === "File" && a.ino === b.ino && a.size === b.size && a.mtimeMs === b.mtimeMs

/** One cached file; `known` is prebuilt so the hot path returns it as is. */
export interface CacheEntry<A> {
  readonly value: A | undefined
  readonly stamp: Stamp
  readonly known: Option.Option<A | undefined>
  /** Clock time of the last check against the disk. */
  checkedAt: number
  /** A check against the disk is under way; meanwhile the entry is served a little longer (see `fresh`). */
  revalidating: boolean
}

/**
 * How long an entry may be served while its check is under way. A check starts
 * once an entry is STORE_REVALIDATE_MS old; serving the old value until then
 * keeps every other request inline instead of each starting its own stat, and
 * still shows another process's write within 1 s (PROTOCOL.md §14).
 */
const SERVE_WHILE_REVALIDATING_MS = 1_000

/** Larger files are refused: a token or key is a few KiB, and a response cannot exceed 64 KiB anyway. */
export const MAX_FILE_BYTES = 1024 * 1024

/** Entries beyond this evict the oldest; the server only ever asks for valid names, so this is a safety net. */
export const DEFAULT_MAX_ENTRIES = 10_000

export interface FileCacheOptions<A> {
  readonly clock: Clock.Clock
  /** Turns file contents into a value; a failure names the invalid field at most, never the contents (secrets). */
  readonly decode: (text: string) => Either.Either<A, FieldIssue | undefined>
  readonly maxEntries?: number
}

export interface FileCache<A> {
  /** The value of `id` if it was checked less than STORE_REVALIDATE_MS ago (the hot path), else `None`. */
  readonly cached: (id: string) => Option.Option<A | undefined>
  /**
   * Checks `file` now, ignoring the age of the entry: stat, and read and
   * decode only when the stamp changed. A corrupt or unreadable file fails with
   * a `StoreFailure`.
   */
  readonly revalidate: (id: string, file: string) => Effect.Effect<A | undefined, StoreFailure>
  /** The value of `id` from memory when it is fresh, else from `file()` (revalidated). */
  readonly get: (id: string, file: () => string) => Effect.Effect<A | undefined, StoreFailure>
  /** Records this process's own write (or removal) at once. */
  readonly remember: (id: string, value: A | undefined, stamp: Stamp) => void
  readonly clear: () => void
  readonly size: () => number
}

// O_NONBLOCK keeps a FIFO planted in place of a file from hanging the open; regular files ignore it.
const READ_FLAGS = constants.O_RDONLY | (constants.O_NONBLOCK ?? 0)

type ReadResult =
  | { readonly _tag: "Absent" }
  | { readonly _tag: "Refused"; readonly reason: "NotAFile" | "TooLarge" }
  | { readonly _tag: "Read"; readonly stamp: Stamp; readonly text: string }

/** Reads a file with the stamp of the very descriptor it was read from, so stamp and contents agree. */
const readWithStamp = async (file: string): Promise<ReadResult> => {
  let handle: fsp.FileHandle
  try {
    handle = await fsp.open(file, READ_FLAGS)
  } catch (error) {
    if (errorCode(error) === "ENOENT") return { _tag: "Absent" }
    throw error
  }
  try {
    const stats = await handle.stat()
    if (!stats.isFile()) return { _tag: "Refused", reason: "NotAFile" }
    if (stats.size > MAX_FILE_BYTES) return { _tag: "Refused", reason: "TooLarge" }
    const text = await handle.readFile("utf8")
    return { _tag: "Read", stamp: stampOf(stats), text }
  } finally {
    await handle.close().catch(() => undefined)
  }
}

type StatResult = { readonly _tag: "Stamp"; readonly stamp: Stamp } | { readonly _tag: "NotAFile" }

const statStamp = async (file: string): Promise<StatResult> => {
  try {
    const stats = await fsp.stat(file)
    return stats.isFile() ? { _tag: "Stamp", stamp: stampOf(stats) } : { _tag: "NotAFile" }
  } catch (error) {
    if (errorCode(error) === "ENOENT") return { _tag: "Stamp", stamp: ABSENT }
    throw error
  }
}

export const makeFileCache = <A>(options: FileCacheOptions<A>): FileCache<A> => {
  const { clock, decode } = options
  const maxEntries = options.maxEntries ?? DEFAULT_MAX_ENTRIES
  const entries = new Map<string, CacheEntry<A>>()

  const makeEntry = (value: A | undefined, stamp: Stamp, checkedAt: number): CacheEntry<A> => ({
    value,
    stamp,
    known: Option.some(value),
    checkedAt,
    revalidating: false
  })

  const put = (id: string, entry: CacheEntry<A>): void => {
    if (!entries.has(id) && entries.size >= maxEntries) {
      const oldest = entries.keys().next()
      if (oldest.done !== true) entries.delete(oldest.value)
    }
    entries.set(id, entry)
  }

  /** Stores what a check found, unless a newer own write replaced the entry meanwhile. */
  const commit = (id: string, before: CacheEntry<A> | undefined, entry: CacheEntry<A>): CacheEntry<A> => {
    if (entries.get(id) === before) put(id, entry)
    return entry
  }

  const cached = (id: string): Option.Option<A | undefined> => {
    const entry = entries.get(id)
    if (entry === undefined) return Option.none()
    const age = clock.unsafeCurrentTimeMillis() - entry.checkedAt
    // A negative age (wall clock stepped back) counts as stale, so a cache never outlives a clock change.
    if (age < 0) return Option.none()
    if (age < STORE_REVALIDATE_MS) return entry.known
    return entry.revalidating && age < SERVE_WHILE_REVALIDATING_MS ? entry.known : Option.none()
  }

  const failure = (cause: unknown) => StoreFailure.io("get", cause)

  const readAndDecode = (
    id: string,
    file: string,
    before: CacheEntry<A> | undefined,
    startedAt: number
  ): Effect.Effect<A | undefined, StoreFailure> =>
    Effect.flatMap(
      Effect.tryPromise({ try: () => readWithStamp(file), catch: failure }),
      (result): Effect.Effect<A | undefined, StoreFailure> => {
        switch (result._tag) {
          case "Absent":
            return Effect.succeed(commit(id, before, makeEntry(undefined, ABSENT, startedAt)).value)
          case "Refused":
            return Effect.fail(new StoreFailure({ operation: "get", reason: result.reason }))
          case "Read": {
            if (before !== undefined && sameStamp(before.stamp, result.stamp)) {
              if (entries.get(id) === before) before.checkedAt = startedAt
              return Effect.succeed(before.value)
            }
            const decoded = decode(result.text)
            if (decoded._tag === "Left") {
              const issue = decoded.left
              return Effect.fail(
                new StoreFailure({
                  operation: "get",
                  reason: "Corrupt",
                  ...(issue === undefined ? {} : { issue })
                })
              )
            }
            return Effect.succeed(commit(id, before, makeEntry(decoded.right, result.stamp, startedAt)).value)
          }
        }
      }
    )

  const revalidate = (id: string, file: string): Effect.Effect<A | undefined, StoreFailure> =>
    Effect.suspend(() => {
      const before = entries.get(id)
      // The check counts from when it started: anything written after that is caught by the next one.
      const startedAt = clock.unsafeCurrentTimeMillis()
      if (before !== undefined) before.revalidating = true
      const check = Effect.flatMap(
        Effect.tryPromise({ try: () => statStamp(file), catch: failure }),
        (stat): Effect.Effect<A | undefined, StoreFailure> => {
          if (stat._tag === "NotAFile") {
            return Effect.fail(new StoreFailure({ operation: "get", reason: "NotAFile" }))
          }
          if (before !== undefined && sameStamp(before.stamp, stat.stamp)) {
            if (entries.get(id) === before) before.checkedAt = startedAt
            return Effect.succeed(before.value)
          }
          if (stat.stamp._tag === "Absent")
            return Effect.succeed(commit(id, before, makeEntry(undefined, ABSENT, startedAt)).value)
          return readAndDecode(id, file, before, startedAt)
        }
      )
      return before === undefined
        ? check
        : Effect.ensuring(
            check,
            Effect.sync(() => {
              before.revalidating = false
            })
          )
    })

  const remember = (id: string, value: A | undefined, stamp: Stamp): void => {
    put(id, makeEntry(value, stamp, clock.unsafeCurrentTimeMillis()))
  }

  const get = (id: string, file: () => string): Effect.Effect<A | undefined, StoreFailure> =>
    Effect.suspend(() => {
      const known = cached(id)
      return Option.isSome(known) ? Effect.succeed(known.value) : revalidate(id, file())
    })

  return {
    cached,
    get,
    revalidate,
    remember,
    clear: () => entries.clear(),
    size: () => entries.size
  }
}
