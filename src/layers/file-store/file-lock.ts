import * as fs from "node:fs"
import * as path from "node:path"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as lockfile from "proper-lockfile"
import { errorCode, StoreFailure } from "../../errors/errors.js"
import { logLinkRefused, storeFailureOf } from "./store-links.js"

/**
 * The cross-process half of a store's lock: `proper-lockfile` creates the
 * directory `<file>.lock` (mkdir is atomic) and keeps touching its mtime while
 * held. A lock whose mtime is older than `stale` belongs to a dead process
 * (SIGKILL, power loss) and is taken over, so a crash blocks the next writer
 * for about 10 s (11 s at most: the library dates a fresh lock up to 1 s ahead).
 *
 * Waiting is single attempts retried on an Effect `Schedule` rather than the
 * library's own retries, so that interrupting a waiter stops it at once
 * instead of leaving a background attempt that could still take the lock
 * later. The pauses run on the system clock, not the program's: they wait for
 * other processes, which run on real time, and a TestClock must not freeze a
 * store's I/O.
 */

export const LOCK_STALE_MS = 10_000
export const LOCK_UPDATE_MS = 2_000

/** Pauses between attempts grow from 20 ms by 1.2x up to 200 ms; 200 attempts wait ~38 s, well past `stale`. */
const RETRY = { attempts: 200, factor: 1.2, minDelayMs: 20, maxDelayMs: 200 } as const

/**
 * The equivalent `proper-lockfile` options, for another program (or a test)
 * that locks the same files with the library's own retries.
 */
export const LOCK_OPTIONS = {
  realpath: false,
  stale: LOCK_STALE_MS,
  update: LOCK_UPDATE_MS,
  retries: {
    retries: RETRY.attempts,
    factor: RETRY.factor,
    minTimeout: RETRY.minDelayMs,
    maxTimeout: RETRY.maxDelayMs
  }
} as const

type StatCallback = (error: NodeJS.ErrnoException | null, stats?: fs.Stats) => void

/**
 * node:fs for the library, except that looking at a lock never follows a
 * symbolic link (§22): a link where the lock directory belongs is refused
 * (`ELOOP`), never taken for a lock nor removed as a stale one.
 */
const lockFs = {
  ...fs,
  stat: (file: string, callback: StatCallback): void => {
    fs.lstat(file, (error, stats) => {
      if (error) return callback(error)
      if (stats.isSymbolicLink()) {
        return callback(Object.assign(new Error("the lock is a symbolic link"), { code: "ELOOP" }))
      }
      callback(null, stats)
    })
  }
}

type Release = () => Promise<void>

/** Another process holds a fresh lock: try again. */
class Busy {
  readonly _tag = "Busy"
}

/**
 * One attempt: the lock, or `Busy` when someone else holds a fresh one. If
 * the waiter is interrupted while the attempt is in flight, a lock it still
 * obtains is released at once.
 */
const attempt = (
  file: string,
  onCompromised: (error: Error) => void
): Effect.Effect<Release, StoreFailure | Busy> =>
  Effect.async<Release, StoreFailure | Busy>((resume) => {
    let abandoned = false
    lockfile
      .lock(file, {
        realpath: false,
        stale: LOCK_STALE_MS,
        update: LOCK_UPDATE_MS,
        retries: 0,
        fs: lockFs,
        onCompromised
      })
      .then(
        (release) => {
          if (abandoned) release().catch(() => undefined)
          else resume(Effect.succeed(release))
        },
        (cause: unknown) => {
          if (abandoned) return
          resume(Effect.fail(errorCode(cause) === "ELOCKED" ? new Busy() : storeFailureOf("lock", cause)))
        }
      )
    return Effect.sync(() => {
      abandoned = true
    })
  })

/** Pauses between attempts: from 20 ms growing by 1.2x, at most 200 ms, for RETRY.attempts attempts in all. */
const waitForLock = Schedule.exponential(Duration.millis(RETRY.minDelayMs), RETRY.factor).pipe(
  Schedule.union(Schedule.spaced(Duration.millis(RETRY.maxDelayMs))),
  Schedule.intersect(Schedule.recurs(RETRY.attempts - 1))
)

const systemClock = Clock.make()

/** Waits for the lock of `file`, giving up with a StoreFailure after RETRY.attempts attempts. */
const acquire = (file: string, onCompromised: (error: Error) => void): Effect.Effect<Release, StoreFailure> =>
  attempt(file, onCompromised).pipe(
    Effect.retry({ schedule: waitForLock, while: (error) => error instanceof Busy }),
    Effect.withClock(systemClock),
    Effect.catchIf(
      (error): error is Busy => error instanceof Busy,
      () => Effect.fail(new StoreFailure({ operation: "lock", reason: "LockHeld" }))
    )
  )

/** Holds the lock of `file` until the scope closes; see `lockFile`. */
const holdLock = (file: string): Effect.Effect<void, StoreFailure, Scope.Scope> =>
  Effect.uninterruptibleMask((restore) =>
    Effect.suspend(() => {
      let compromised: Error | undefined
      const onCompromised = (error: Error): void => {
        compromised = error
      }
      return restore(acquire(file, onCompromised)).pipe(
        Effect.flatMap((release) =>
          Effect.addFinalizer(() =>
            Effect.tryPromise(() => release()).pipe(
              Effect.catchAll(() => Effect.void),
              Effect.zipRight(
                Effect.suspend(() =>
                  compromised === undefined
                    ? Effect.void
                    : Effect.logWarning("a store lock was compromised while held (lost its freshness)").pipe(
                        Effect.annotateLogs({
                          lock: path.basename(file),
                          code: errorCode(compromised) ?? "unknown"
                        })
                      )
                )
              )
            )
          )
        )
      )
    })
  )

/**
 * Holds the cross-process lock of `file` until the scope closes (released even
 * on interruption). The directory of `file` must exist. A symbolic link where
 * the lock belongs refuses the lock (`Link`), logged with `entry`, the lock's
 * store-relative name.
 *
 * If the library finds the lock compromised (its mtime could not be kept fresh,
 * e.g. the event loop stalled past `stale`), its default is to throw inside a
 * timer and crash the process; here it is only recorded and logged on release.
 */
export const lockFile = (file: string, entry: string): Effect.Effect<void, StoreFailure, Scope.Scope> =>
  logLinkRefused(holdLock(file), entry)
