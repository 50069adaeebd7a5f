import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import { DEFAULT_BUCKET } from "../protocol/names.js"
import { sanitizedTokenJson } from "../protocol/token.js"
import type { PollStatus } from "../services/LoginSessions.js"
import { ready, run } from "./handled.js"
import { type OperationDeps, type OperationTable, tokenKey } from "./operations.js"

/** `oauth_poll`'s `data` for a session's status. */
const pollJson = (status: PollStatus): string => {
  switch (status._tag) {
    case "Pending":
      return `{"status":"pending","pollIntervalMs":${status.pollIntervalMs}}`
    case "Complete":
      return `{"status":"complete","token":${sanitizedTokenJson(status.token)}}`
    case "Failed":
      return JSON.stringify({ status: "error", code: status.code, error: status.message })
  }
}

/**
 * The `oauth_*` operations of an ordinary connection (PROTOCOL.md §17): a
 * login of `provider:bucket` must be allowed by the access policy; the
 * other three act on sessions, which belong to the identity that started
 * them (the sessions service refuses any other). `oauth_poll` only reports,
 * so it answers inline; the rest talk to the provider or wait for a fiber.
 */
export const loginSpecs = (
  deps: OperationDeps
): Pick<OperationTable["specs"], "oauth_initiate" | "oauth_exchange" | "oauth_poll" | "oauth_cancel"> => {
  const { logins, policy } = deps
  return {
    oauth_initiate: {
      authorize: (p) => policy.allowsToken(p.provider, p.bucket ?? DEFAULT_BUCKET),
      run: (p, identity) =>
        run(Effect.map(logins.initiate(identity, tokenKey(p)), (data) => JSON.stringify(data)))
    },
    oauth_exchange: {
      authorize: () => true,
      run: (p, identity) =>
        run(
          Effect.map(
            logins.exchange(identity, p.session_id, p.code),
            (token) => `{"token":${sanitizedTokenJson(token)}}`
          )
        )
    },
    oauth_poll: {
      authorize: () => true,
      run: (p, identity) => ready(Either.map(logins.poll(identity, p.session_id), pollJson))
    },
    oauth_cancel: {
      authorize: () => true,
      run: (p, identity) => run(Effect.as(logins.cancel(identity, p.session_id), "{}"))
    }
  }
}
