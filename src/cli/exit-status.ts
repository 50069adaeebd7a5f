import * as ValidationError from "@effect/cli/ValidationError"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import type { CopyNotVerified } from "../errors/copy.js"
import type { NotFound, StoreError } from "../errors/errors.js"
import type { LoginFailed } from "../errors/login-errors.js"
import { describeProviderCall } from "../errors/provider-call.js"
import type { DataDirRefused, KeyringUnavailable, ServerStartError } from "../errors/startup.js"
import type { UsageError } from "../errors/usage.js"
import type { LoginError } from "../services/LoginSessions.js"
import type { RefreshError } from "../services/RefreshCoordinator.js"
import type { AdminCallFailed } from "./admin-client.js"

/** Exit statuses of PROTOCOL.md §13. */
export const EXIT_OK = 0
export const EXIT_FAILURE = 1
export const EXIT_NOT_FOUND = 1
export const EXIT_USAGE = 2

/**
 * A command's own exit status when it is not 0 and it has already said why:
 * `exec` exits with its child's, `doctor` with 1 when a check failed.
 */
export class ExitWith extends Schema.TaggedError<ExitWith>()("ExitWith", { status: Schema.Number }) {}

/** Writes `credproxy: MESSAGE` to stderr and gives the status. */
const report = (message: string, status: number) => Effect.as(Console.error(`credproxy: ${message}`), status)

/** Every failure a command can end in. */
export type CliError =
  | ExitWith
  | UsageError
  | ServerStartError
  | DataDirRefused
  | KeyringUnavailable
  | NotFound
  | StoreError
  | CopyNotVerified
  | RefreshError
  | AdminCallFailed
  | LoginError
  | LoginFailed

/**
 * The one place where a command's outcome becomes a message on stderr and an
 * exit status: 2 for bad arguments or input and a store that cannot be
 * opened (a refused data directory, an unusable keyring; the message says
 * what to fix),
 * 1 for something not found or a store or provider that failed, a child's
 * own status for `exec`, 0 otherwise. @effect/cli has already printed what
 * is wrong with the arguments; the line after it says where the usage of
 * `command` (`credproxy token show`) is.
 */
export const withExitStatus = <R>(
  program: Effect.Effect<void, CliError | ValidationError.ValidationError, R>,
  command: string
): Effect.Effect<number, never, R> =>
  program.pipe(
    Effect.as(EXIT_OK),
    Effect.catchIf(ValidationError.isValidationError, () =>
      report(`see '${command} --help' for the usage and examples`, EXIT_USAGE)
    ),
    Effect.catchTags({
      ExitWith: (error) => Effect.succeed(error.status),
      UsageError: (error) => report(error.message, EXIT_USAGE),
      ServerStartError: (error) => report(error.message, EXIT_USAGE),
      DataDirRefused: (error) => report(error.message, EXIT_USAGE),
      KeyringUnavailable: (error) => report(error.message, EXIT_USAGE),
      NotFound: (error) => report(error.message, EXIT_NOT_FOUND),
      LoginStartFailed: (error) =>
        report(
          `cannot start the login at ${error.provider}: ${error.message} (${describeProviderCall(error.call)}); check its entry with credproxy doctor, then log in again`,
          EXIT_FAILURE
        ),
      ExchangeFailed: (error) =>
        report(`the login did not complete: ${error.message}; run credproxy login again`, EXIT_FAILURE),
      LoginSessionError: (error) =>
        report(`the login did not complete: ${error.message}; run credproxy login again`, EXIT_FAILURE)
    }),
    Effect.catchAll((error) => report(error.message, EXIT_FAILURE))
  )
