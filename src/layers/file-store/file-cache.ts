import type * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import type * as Either from "effect/Either"
import * as Option from "effect/Option"
import { StoreFailure } from "../../errors/errors.js"
import type { FieldIssue } from "../../protocol/parse-issue.js"
import { makeBytesLru } from "./bytes-lru.js"
import { type FileRead, readFileIfChanged } from "./file-read.js"
import { ABSENT, type Stamp, sameStamp } from "./file-stamp.js"
import { linkIgnored } from "./store-links.js"

/**
 * An in-memory view of small files that is re-checked against the disk at
 * most every STORE_REVALIDATE_MS (PROTOCOL.md §14: another process's writes
 * show within 1 s). A fresh entry is read synchronously (`cached`, its
 * `Option` prebuilt: no I/O and no allocation), and the same value object is
 * handed out until the file changes, so callers can memoize per object.
 *
 * A change is detected by the file's stamp (`file-stamp.ts`); a file is read
 * only when its stamp changed, and never past MAX_FILE_BYTES (`file-read.ts`).
 *
 * The cache holds at most `maxBytes` of file contents (§22: 8 MiB), counted
 * as the files' sizes in bytes; past it, the least recently used entries are
 * dropped first (`bytes-lru.ts`).
 */

/** How often an entry is re-checked against the disk (well inside the 1 s visibility rule). */
export const STORE_REVALIDATE_MS = 500

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
}

/**
 * How long an entry may be served while its check is under way. A check starts
 * once an entry is STORE_REVALIDATE_MS old; serving the old value until then
 * keeps every other request inline instead of each starting its own stat, and
 * still shows another process's write within 1 s (PROTOCOL.md §14).
 */
const SERVE_WHILE_REVALIDATING_MS = 1_000

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
  /** Records this process's own write (or removal) at once; `stamp` is that of the file it wrote. */
  readonly remember: (id: string, value: A | undefined, stamp: Stamp) => void
  readonly clear: () => void
  readonly size: () => number
  /** Bytes held, for tests and the status. */
  readonly bytes: () => number
}

/** A file's contents as a value, or the `Corrupt` failure naming the invalid field at most. */
const decodeOrFail = <A>(
  decode: FileCacheOptions<A>["decode"],
  text: string
): Effect.Effect<A, StoreFailure> => {
  const decoded = decode(text)
  if (decoded._tag === "Right") return Effect.succeed(decoded.right)
  const issue = decoded.left
  return Effect.fail(
    new StoreFailure({ operation: "get", reason: "Corrupt", ...(issue === undefined ? {} : { issue }) })
  )
}

export const makeFileCache = <A>(options: FileCacheOptions<A>): FileCache<A> => {
  const { clock, decode } = options
  const entries = makeBytesLru<CacheEntry<A>>(options.maxBytes ?? DEFAULT_MAX_BYTES)

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
    revalidating: false
  })

  /** Stores what a check found, unless a newer own write replaced the entry meanwhile. */
  const commit = (id: string, before: CacheEntry<A> | undefined, entry: CacheEntry<A>): A | undefined => {
    if (entries.peek(id) === before) entries.set(id, entry)
    return entry.value
  }

  const cached = (id: string): Option.Option<A | undefined> => {
    // Asked for, so used, whether or not it is still fresh.
    const entry = entries.use(id)
    if (entry === undefined) return Option.none()
    const age = clock.unsafeCurrentTimeMillis() - entry.checkedAt
    // A negative age (wall clock stepped back) counts as stale, so a cache never outlives a clock change.
    if (age < 0) return Option.none()
    if (age >= STORE_REVALIDATE_MS && !(entry.revalidating && age < SERVE_WHILE_REVALIDATING_MS)) {
      return Option.none()
    }
    return entry.known
  }

  /** An absent file, or a link where it belongs: a link is never followed, and is logged once per link. */
  const settleStamp = (
    id: string,
    relative: string,
    before: CacheEntry<A> | undefined,
    stamp: Stamp,
    startedAt: number
  ): Effect.Effect<A | undefined> => {
    const value = commit(id, before, makeEntry(undefined, stamp, 0, startedAt))
    const knownLink = before !== undefined && sameStamp(before.stamp, stamp)
    return stamp._tag !== "Link" || knownLink
      ? Effect.succeed(value)
      : Effect.as(linkIgnored(relative), value)
  }

  const settle = (
    id: string,
    relative: string,
    before: CacheEntry<A> | undefined,
    startedAt: number,
    result: FileRead | undefined
  ): Effect.Effect<A | undefined, StoreFailure> => {
    if (result === undefined) return settleStamp(id, relative, before, ABSENT, startedAt)
    switch (result._tag) {
      case "Same":
        if (before !== undefined && entries.peek(id) === before) {
          before.checkedAt = startedAt
          entries.use(id)
        }
        return Effect.succeed(before?.value)
      case "Refused":
        return Effect.fail(new StoreFailure({ operation: "get", reason: result.reason }))
      case "Stamp":
        return settleStamp(id, relative, before, result.stamp, startedAt)
      case "Read":
        return Effect.map(decodeOrFail(decode, result.text), (value) =>
          commit(id, before, makeEntry(value, result.stamp, result.bytes, startedAt))
        )
    }
  }

  const revalidate = (
    id: string,
    locate: Locate,
    relative: string
  ): Effect.Effect<A | undefined, StoreFailure> =>
    Effect.suspend(() => {
      const before = entries.peek(id)
      // The check counts from when it started: anything written after that is caught by the next one.
      const startedAt = clock.unsafeCurrentTimeMillis()
      if (before !== undefined) before.revalidating = true
      const checked = Effect.flatMap(
        locate((file) => readFileIfChanged(file, before?.stamp)),
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

  const remember = (id: string, value: A | undefined, stamp: Stamp): void => {
    const bytes = stamp._tag === "File" ? stamp.size : 0
    entries.set(id, makeEntry(value, stamp, bytes, clock.unsafeCurrentTimeMillis()))
  }

  return { cached, get, revalidate, remember, clear: entries.clear, size: entries.size, bytes: entries.bytes }
}
