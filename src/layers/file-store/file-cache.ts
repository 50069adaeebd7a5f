import { constants, type Stats } from "node:fs"
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
 * show within 1 s). A fresh entry is read synchronously (`cached`, its
 * `Option` prebuilt: no I/O and no allocation), and the same value object is
 * handed out until the file changes, so callers can memoize per object.
 *
 * A change is detected by the file's stamp (inode, size, mtime). The stores
 * always replace files by rename, which gives a new inode, so their writes are
 * always seen; only an in-place rewrite by a foreign tool that keeps the size
 * within one file-system timestamp tick could go unnoticed.
 *
 * The cache holds at most `maxBytes` of file contents (§22: 8 MiB); past it,
 * entries not used since the last eviction pass go first (a second-chance
 * clock: a hit costs one boolean write).
 */

/** How often an entry is re-checked against the disk (well inside the 1 s visibility rule). */
export const STORE_REVALIDATE_MS = 500

/** What the disk said about a file the last time we looked; a link is never followed, and reads as absent. */
export type Stamp =
  | { readonly _tag: "Absent" }
  | { readonly _tag: "Link"; readonly ino: number }
  | { readonly _tag: "File"; readonly ino: number; readonly size: number; readonly mtimeMs: number }

export const ABSENT: Stamp = { _tag: "Absent" }

export const stampOf = (stats: Stats): Stamp => ({
  _tag: "File",
  ino: stats.ino,
  size: stats.size,
  mtimeMs: stats.mtimeMs
})

const sameStamp = (a: Stamp, b: Stamp): boolean => {
  switch (a._tag) {
    case "Absent":
      return b._tag === "Absent"
    case "Link":
      return b._tag === "Link" && a.ino === b.ino
    case "File":
      return b._tag === "File" && a.ino === b.ino && a.size === b.size && a.mtimeMs === b.mtimeMs
  }
}

/** One cached file; `known` is prebuilt so the hot path returns it as is. */
interface CacheEntry<A> {
  readonly value: A | undefined
  readonly stamp: Stamp
  readonly known: Option.Option<A | undefined>
  /** Bytes the entry counts against the budget. */
  readonly bytes: number
  /** Clock time of the last check against the disk. */
  checkedAt: number
  /** A check against the disk is under way; meanwhile the entry is served a little longer (see `cached`). */
  revalidating: boolean
  /** Used since the last eviction pass looked at it. */
  used: boolean
}

/**
 * How long an entry may be served while its check is under way. A check starts
 * once an entry is STORE_REVALIDATE_MS old; serving the old value until then
 * keeps every other request inline instead of each starting its own stat, and
 * still shows another process's write within 1 s (PROTOCOL.md §14).
 */
const SERVE_WHILE_REVALIDATING_MS = 1_000

/** Larger files are refused: a token is at most 16 KiB, and an answer cannot exceed 64 KiB anyway. */
export const MAX_FILE_BYTES = 64 * 1024

/** The default budget of file contents held in memory (§22). */
export const DEFAULT_MAX_BYTES = 8 * 1024 * 1024

/** What an absent entry counts against the budget: its key and bookkeeping. */
const ENTRY_OVERHEAD_BYTES = 64

/**
 * Runs `use` with the path of the entry's file, or answers `undefined` when
 * the directory it would be in does not exist (so the file is absent).
 */
export type Locate = <A>(use: (file: string) => Promise<A>) => Effect.Effect<A | undefined, StoreFailure>

export interface FileCacheOptions<A> {
  readonly clock: Clock.Clock
  /** Turns file contents into a value; a failure names the invalid field at most, never the contents (secrets). */
  readonly decode: (text: string) => Either.Either<A, FieldIssue | undefined>
  readonly maxBytes?: number
}

export interface FileCache<A> {
  /** The value of `id` if it was checked less than STORE_REVALIDATE_MS ago (the hot path), else `None`. */
  readonly cached: (id: string) => Option.Option<A | undefined>
  /** The value of `id` from memory when it is fresh, else from its file (revalidated). */
  readonly get: (id: string, locate: Locate, relative: string) => Effect.Effect<A | undefined, StoreFailure>
  /**
   * Checks the file now, ignoring the age of the entry: stat, and read and
   * decode only when the stamp changed. A link where the file belongs reads
   * as absent and is logged with `relative`, the store-relative name.
   */
  readonly revalidate: (
    id: string,
    locate: Locate,
    relative: string
  ) => Effect.Effect<A | undefined, StoreFailure>
  /** Records this process's own write (or removal) at once; `bytes` is what it wrote. */
  readonly remember: (id: string, value: A | undefined, stamp: Stamp, bytes: number) => void
  readonly clear: () => void
  readonly size: () => number
  /** Bytes held, for tests and the status. */
  readonly bytes: () => number
}

// O_NONBLOCK keeps a FIFO planted in place of a file from hanging the open; O_NOFOLLOW refuses a link.
const READ_FLAGS = constants.O_RDONLY | (constants.O_NONBLOCK ?? 0) | (constants.O_NOFOLLOW ?? 0)

type Check =
  | { readonly _tag: "Same" }
  | { readonly _tag: "Stamp"; readonly stamp: Stamp }
  | { readonly _tag: "Refused"; readonly reason: "NotAFile" | "TooLarge" }
  | { readonly _tag: "Read"; readonly stamp: Stamp; readonly text: string }

const SAME: Check = { _tag: "Same" }

/**
 * One look at the file, through `lstat` (a link is reported, never followed),
 * then, when its stamp changed, a read with the stamp of the very descriptor
 * it was read from, so stamp and contents agree.
 */
const check = async (file: string, before: Stamp | undefined): Promise<Check> => {
  let stats: Stats
  try {
    stats = await fsp.lstat(file)
  } catch (error) {
    if (errorCode(error) === "ENOENT") return { _tag: "Stamp", stamp: ABSENT }
    throw error
  }
  if (stats.isSymbolicLink()) return { _tag: "Stamp", stamp: { _tag: "Link", ino: stats.ino } }
  if (!stats.isFile()) return { _tag: "Refused", reason: "NotAFile" }
  if (before !== undefined && sameStamp(before, stampOf(stats))) return SAME
  let handle: fsp.FileHandle
  try {
    handle = await fsp.open(file, READ_FLAGS)
  } catch (error) {
    const code = errorCode(error)
    if (code === "ENOENT") return { _tag: "Stamp", stamp: ABSENT }
    if (code === "ELOOP") return { _tag: "Stamp", stamp: { _tag: "Link", ino: 0 } }
    throw error
  }
  try {
    const opened = await handle.stat()
    if (!opened.isFile()) return { _tag: "Refused", reason: "NotAFile" }
    if (opened.size > MAX_FILE_BYTES) return { _tag: "Refused", reason: "TooLarge" }
    return { _tag: "Read", stamp: stampOf(opened), text: await handle.readFile("utf8") }
  } finally {
    await handle.close().catch(() => undefined)
  }
}

export const makeFileCache = <A>(options: FileCacheOptions<A>): FileCache<A> => {
  const { clock, decode } = options
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES
  const entries = new Map<string, CacheEntry<A>>()
  let held = 0

  const makeEntry = (
    value: A | undefined,
    stamp: Stamp,
    bytes: number,
    checkedAt: number
  ): CacheEntry<A> => ({
    value,
    stamp,
    known: Option.some(value),
    bytes: bytes + ENTRY_OVERHEAD_BYTES,
    checkedAt,
    revalidating: false,
    used: true
  })

  /** Drops entries until the budget holds, the unused ones first (second chance for the used). */
  const evict = (): void => {
    for (const [id, entry] of entries) {
      if (held <= maxBytes) return
      if (entry.used) {
        entry.used = false
        entries.delete(id)
        entries.set(id, entry)
        continue
      }
      entries.delete(id)
      held -= entry.bytes
    }
  }

  const put = (id: string, entry: CacheEntry<A>): void => {
    const previous = entries.get(id)
    if (previous !== undefined) held -= previous.bytes
    entries.delete(id)
    entries.set(id, entry)
    held += entry.bytes
    if (held > maxBytes) evict()
  }

  /** Stores what a check found, unless a newer own write replaced the entry meanwhile. */
  const commit = (id: string, before: CacheEntry<A> | undefined, entry: CacheEntry<A>): A | undefined => {
    if (entries.get(id) === before) put(id, entry)
    return entry.value
  }

  const cached = (id: string): Option.Option<A | undefined> => {
    const entry = entries.get(id)
    if (entry === undefined) return Option.none()
    const age = clock.unsafeCurrentTimeMillis() - entry.checkedAt
    // A negative age (wall clock stepped back) counts as stale, so a cache never outlives a clock change.
    if (age < 0) return Option.none()
    if (age >= STORE_REVALIDATE_MS && !(entry.revalidating && age < SERVE_WHILE_REVALIDATING_MS)) {
      return Option.none()
    }
    entry.used = true
    return entry.known
  }

  const settle = (
    id: string,
    relative: string,
    before: CacheEntry<A> | undefined,
    startedAt: number,
    result: Check | undefined
  ): Effect.Effect<A | undefined, StoreFailure> => {
    if (result === undefined)
      return Effect.succeed(commit(id, before, makeEntry(undefined, ABSENT, 0, startedAt)))
    switch (result._tag) {
      case "Same":
        if (before !== undefined && entries.get(id) === before) before.checkedAt = startedAt
        return Effect.succeed(before?.value)
      case "Refused":
        return Effect.fail(new StoreFailure({ operation: "get", reason: result.reason }))
      case "Stamp": {
        const value = commit(id, before, makeEntry(undefined, result.stamp, 0, startedAt))
        // A link where a file belongs is never followed: it reads as absent, and is logged once per link.
        if (result.stamp._tag !== "Link" || (before !== undefined && sameStamp(before.stamp, result.stamp))) {
          return Effect.succeed(value)
        }
        return Effect.as(
          Effect.logWarning("symbolic link in the store ignored").pipe(
            Effect.annotateLogs({ entry: relative })
          ),
          value
        )
      }
      case "Read": {
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
        return Effect.succeed(
          commit(id, before, makeEntry(decoded.right, result.stamp, result.text.length, startedAt))
        )
      }
    }
  }

  const revalidate = (
    id: string,
    locate: Locate,
    relative: string
  ): Effect.Effect<A | undefined, StoreFailure> =>
    Effect.suspend(() => {
      const before = entries.get(id)
      // The check counts from when it started: anything written after that is caught by the next one.
      const startedAt = clock.unsafeCurrentTimeMillis()
      if (before !== undefined) before.revalidating = true
      const checked = Effect.flatMap(
        locate((file) => check(file, before?.stamp)),
        (result) => settle(id, relative, before, startedAt, result)
      )
      return before === undefined
        ? checked
        : Effect.ensuring(
            checked,
            Effect.sync(() => {
              before.revalidating = false
            })
          )
    })

  const get = (id: string, locate: Locate, relative: string): Effect.Effect<A | undefined, StoreFailure> =>
    Effect.suspend(() => {
      const known = cached(id)
      return Option.isSome(known) ? Effect.succeed(known.value) : revalidate(id, locate, relative)
    })

  const remember = (id: string, value: A | undefined, stamp: Stamp, bytes: number): void => {
    put(id, makeEntry(value, stamp, bytes, clock.unsafeCurrentTimeMillis()))
  }

  return {
    cached,
    get,
    revalidate,
    remember,
    clear: () => {
      entries.clear()
      held = 0
    },
    size: () => entries.size,
    bytes: () => held
  }
}
