import * as fsp from "node:fs/promises"
import * as Effect from "effect/Effect"
import { errorCode, StoreFailure, type StoreOperation } from "../../errors/errors.js"

/**
 * Symbolic links in the store are never followed (PROTOCOL.md §22): a read
 * takes one where a file belongs for an absent file, and a write or a lock
 * where one sits is refused (reason `Link`). Either way it is logged at warn
 * with its store-relative name only, never with where it points.
 */

/** Logs a link found at `entry`, the store-relative name (e.g. `keys/openai.key`). */
export const linkIgnored = (entry: string): Effect.Effect<void> =>
  Effect.logWarning("symbolic link in the store ignored").pipe(Effect.annotateLogs({ entry }))

/** Whether a symbolic link sits at `file` (looked at with `lstat`, never followed). */
export const isLinkAt = (file: string): Promise<boolean> =>
  fsp.lstat(file).then(
    (stats) => stats.isSymbolicLink(),
    () => false
  )

/** The error a write throws when a link sits where its file belongs: `ELOOP`, as `O_NOFOLLOW` reports one. */
export const linkInTheWay = (): Error =>
  Object.assign(new Error("a symbolic link is where the file belongs"), { code: "ELOOP" })

/** A failed file-system call as a `StoreFailure`: `Link` for a link in the way (`ELOOP`), else `Io` with its code. */
export const storeFailureOf = (operation: StoreOperation, cause: unknown): StoreFailure =>
  errorCode(cause) === "ELOOP"
    ? new StoreFailure({ operation, reason: "Link" })
    : StoreFailure.io(operation, cause)

/** Logs the link behind a `Link` failure of `effect` by its store-relative name `entry`; the failure stays. */
export const logLinkRefused = <A, R>(
  effect: Effect.Effect<A, StoreFailure, R>,
  entry: string
): Effect.Effect<A, StoreFailure, R> =>
  Effect.tapError(effect, (error) => (error.reason === "Link" ? linkIgnored(entry) : Effect.void))
