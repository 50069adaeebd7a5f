import * as Either from "effect/Either"
import { UsageError } from "../errors/usage.js"
import { SESSION_TIMEOUT_ENV } from "../services/LoginSessions.js"

/**
 * The login session lifetime from `LLXPRT_OAUTH_SESSION_TIMEOUT_SECONDS`
 * (PROTOCOL.md §17), in milliseconds; `undefined` when it is not set (or
 * empty). Anything but a whole number of seconds of 1 or more is a
 * `UsageError` (exit 2) rather than a silent default.
 */
export const sessionLifetimeFromEnv = (
  env: NodeJS.ProcessEnv = process.env
): Either.Either<number | undefined, UsageError> => {
  const value = env[SESSION_TIMEOUT_ENV]
  if (value === undefined || value === "") return Either.right(undefined)
  const seconds = /^[0-9]{1,9}$/.test(value) ? Number(value) : 0
  return seconds >= 1
    ? Either.right(seconds * 1000)
    : Either.left(new UsageError({ reason: "SessionTimeout", subject: SESSION_TIMEOUT_ENV, detail: value }))
}
