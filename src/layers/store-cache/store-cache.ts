import * as Cause from "effect/Cause"
import type * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import type * as Either from "effect/Either"
import * as FiberId from "effect/FiberId"
import * as Option from "effect/Option"
import { StoreFailure } from "../../errors/errors.js"
import type { FieldIssue } from "../../protocol/parse-issue.js"
import { linkIgnored } from "../file-store/store-links.js"
import { makeBytesLru } from "./bytes-lru.js"
import { ABSENT, type Stamp, type StoreRead, sameStamp } from "./stamp.js"

/**
 * An in-memory view of a store's small entries (token files, key files,
 * keyring entries) that is re-checked against the backing store at most every
 * STORE_REVALIDATE_MS (PROTOCOL.md §14: another process's writes show within
 * 1 s). A fresh entry is read synchronously (`cached`, its `Option` prebuilt:
 * no I/O and no allocation), and the same value object is handed out until
 * the entry changes, so callers can memoize per object.
 *
 * A change is detected by the entry's stamp (`stamp.ts`): the store's `Look`
 * answers `Same` while the stamp is unchanged, and only a changed entry is
 * decoded again.
 *
 * The cache holds at most `maxBytes` of stored contents (§22: 8 MiB), counted
 * as their sizes in bytes; past it, the least recently used entries are
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
 * One look at an entry in the backing store, given the stamp the cache holds
 * for it: `Same` while it is unchanged, else what is there now; `undefined`
 * when the place it would be in does not exist (so it is absent).
 */
export type Look = (before: Stamp | undefined) => Effect.Effect<StoreRead | undefined, StoreFailure>

export interface StoreCacheOptions<A> {
  readonly clock: Clock.Clock
  /** Turns stored contents into a value; a failure names the invalid field at most, never the contents (secrets). */
  readonly decode: (text: string) => Either.Either<A, FieldIssue | undefined>
  readonly maxBytes?: number
}

export interface StoreCache<A> {
  /** The value of `id` if it was checked less than STORE_REVALIDATE_MS ago (the hot path), else `None`. */
  readonly cached: (id: string) => Option.Option<A | undefined>
  /** The value of `id` from memory when it is fresh, else from the backing store (revalidated). */
  readonly get: (id: string, look: Look, relative: string) => Effect.Effect<A | undefined, StoreFailure>
  /**
   * Checks the entry now, ignoring the age of what is held: decoded again
   * only when its stamp changed. A link where a file belongs reads as absent
   * and is logged with `relative`, the store-relative name.
   */
  readonly revalidate: (
    id: string,
    look: Look,
    relative: string
  ) => Effect.Effect<A | undefined, StoreFailure>
  /** Records this process's own write (or removal) at once; `stamp` is that of what it wrote. */
  readonly remember: (id: string, value: A | undefined, stamp: Stamp) => void
  readonly clear: () => void
  readonly size: () => number
  /** Bytes held, for tests and the status. */
  readonly bytes: () => number
}

/** Stored contents as a value, or the `Corrupt` failure naming the invalid field at most. */
const decodeOrFail = <A>(
  decode: StoreCacheOptions<A>["decode"],
  text: string
): Effect.Effect<A, StoreFailure> => {
  const decoded = decode(text)
  if (decoded._tag === "Right") return Effect.succeed(decoded.right)
  const issue = decoded.left
  return Effect.fail(
    new StoreFailure({ operation: "get", reason: "Corrupt", ...(issue === undefined ? {} : { issue }) })
  )
}

export const makeStoreCache = <A>(options: StoreCacheOptions<A>): StoreCache<A> => {
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
    result: StoreRead | undefined
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

  const revalidate = (id: string, look: Look, relative: string): Effect.Effect<A | undefined, StoreFailure> =>
    Effect.suspend(() => {
      const before = entries.peek(id)
      // The check counts from when it started: anything written after that is caught by the next one.
      const startedAt = clock.unsafeCurrentTimeMillis()
      if (before !== undefined) before.revalidating = true
      const checked = Effect.flatMap(look(before?.stamp), (result) =>
        settle(id, relative, before, startedAt, result)
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

  /**
   * Checks under way for `get`, by id: a read that finds the entry stale
   * while another read's check of it is still running waits for that check
   * instead of starting its own, so a burst of requests for one stale entry
   * costs one look at the backing store (one D-Bus round trip for the
   * keyring), not one per request. `revalidate` (`getLatest`, under the
   * lock) never joins a check that began before it was asked.
   */
  const checks = new Map<string, Deferred.Deferred<A | undefined, StoreFailure>>()

  const get = (id: string, look: Look, relative: string): Effect.Effect<A | undefined, StoreFailure> =>
    Effect.suspend(() => {
      const known = cached(id)
      if (Option.isSome(known)) return Effect.succeed(known.value)
      const running = checks.get(id)
      if (running !== undefined) {
        // A check abandoned by its caller (interrupted) is taken over by the next reader.
        return Deferred.await(running).pipe(
          Effect.catchAllCause((cause) =>
            Cause.isInterruptedOnly(cause) ? get(id, look, relative) : Effect.failCause(cause)
          )
        )
      }
      const done = Deferred.unsafeMake<A | undefined, StoreFailure>(FiberId.none)
      checks.set(id, done)
      return revalidate(id, look, relative).pipe(
        Effect.onExit((exit) =>
          Effect.suspend(() => {
            if (checks.get(id) === done) checks.delete(id)
            return Deferred.done(done, exit)
          })
        )
      )
    })

  const remember = (id: string, value: A | undefined, stamp: Stamp): void => {
    const bytes = stamp._tag === "File" || stamp._tag === "Value" ? stamp.size : 0
    entries.set(id, makeEntry(value, stamp, bytes, clock.unsafeCurrentTimeMillis()))
  }

  return { cached, get, revalidate, remember, clear: entries.clear, size: entries.size, bytes: entries.bytes }
}
