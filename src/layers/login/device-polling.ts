import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import type { ExchangeFailed } from "../../errors/login-errors.js"
import type { ProviderCallIssue } from "../../errors/provider-call.js"
import { describeProviderCall } from "../../errors/provider-call.js"
import type { OAuthToken } from "../../protocol/token.js"
import {
  type LoginOutcome,
  MAX_TRANSIENT_POLL_FAILURES,
  SLOW_DOWN_STEP_MS
} from "../../services/LoginSessions.js"
import type { RefreshedToken } from "../../services/TokenRefresher.js"
import { exchangeFailed } from "./login-store.js"
import type { Session } from "./session-table.js"

export const ACCESS_DENIED: LoginOutcome = {
  _tag: "Failed",
  code: "ACCESS_DENIED",
  message: "the login was refused at the provider"
}
const EXPIRED_TOKEN: LoginOutcome = {
  _tag: "Failed",
  code: "EXPIRED_TOKEN",
  message: "the device code expired before the login was completed"
}

/** A failed exchange as the outcome `oauth_poll` reports. */
export const failedOutcome = (error: ExchangeFailed): LoginOutcome => ({
  _tag: "Failed",
  code: "EXCHANGE_FAILED",
  message: error.message
})

/**
 * The host's side of a device login (RFC 8628 §3.4, §3.5): asks the token
 * endpoint every `session.pollIntervalMs` (on the Clock) until the user has
 * answered. `authorization_pending` waits on, `slow_down` adds 5 s to the
 * interval (and `oauth_poll` passes it on), `access_denied` and
 * `expired_token` end it; a transient failure is tried again, up to three in
 * a row; anything else ends it as `EXCHANGE_FAILED`. The first request comes
 * one interval after the start.
 */
export const pollDevice = (
  session: Session,
  ask: Effect.Effect<RefreshedToken, ProviderCallIssue>,
  store: (answer: RefreshedToken) => Effect.Effect<OAuthToken, ExchangeFailed>
): Effect.Effect<LoginOutcome> =>
  Effect.gen(function* () {
    let transient = 0
    for (;;) {
      yield* Effect.sleep(Duration.millis(session.pollIntervalMs))
      const answer = yield* Effect.either(ask)
      if (Either.isRight(answer)) {
        const stored = yield* Effect.either(store(answer.right))
        return Either.isRight(stored)
          ? ({ _tag: "Complete", token: stored.right } as const)
          : failedOutcome(stored.left)
      }
      const issue = answer.left
      switch (issue.error) {
        case "authorization_pending":
          transient = 0
          continue
        case "slow_down":
          transient = 0
          session.pollIntervalMs += SLOW_DOWN_STEP_MS
          continue
        case "access_denied":
          return ACCESS_DENIED
        case "expired_token":
          return EXPIRED_TOKEN
      }
      if (issue.reason === "Transient" && ++transient < MAX_TRANSIENT_POLL_FAILURES) {
        yield* Effect.logWarning("device login poll failed; will ask again").pipe(
          Effect.annotateLogs({ detail: describeProviderCall(issue) })
        )
        continue
      }
      yield* Effect.logWarning("device login failed at the provider").pipe(
        Effect.annotateLogs({ detail: describeProviderCall(issue) })
      )
      return failedOutcome(exchangeFailed(session.key.provider, issue))
    }
  })
