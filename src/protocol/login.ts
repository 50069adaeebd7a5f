import * as Schema from "effect/Schema"
import { SanitizedToken } from "./token.js"

/**
 * The wire side of OAuth login (PROTOCOL.md §17): the flows, the bounds of
 * what a client may send, and the `data` of the four `oauth_*` answers.
 */

/** How a login is completed: a device code (RFC 8628), a pasted code, or a redirect to a loopback listener. */
export const LoginFlow = Schema.Literal("device_code", "pkce_redirect", "browser_redirect")
export type LoginFlow = typeof LoginFlow.Type
export const LOGIN_FLOWS: ReadonlyArray<LoginFlow> = LoginFlow.literals

/** The longest `session_id` read; the server's own are 32 hex characters, any other is simply not found. */
export const MAX_SESSION_ID_LENGTH = 128
/** The longest pasted code (`CODE` or `CODE#STATE`) read. */
export const MAX_PASTED_CODE_LENGTH = 4096

export const SessionId = Schema.String.pipe(
  Schema.filter((value) => value.length > 0 && value.length <= MAX_SESSION_ID_LENGTH, {
    message: () => `must be a non-empty string of at most ${MAX_SESSION_ID_LENGTH} characters`
  })
)

export const PastedCode = Schema.String.pipe(
  Schema.filter((value) => value.trim().length > 0 && value.length <= MAX_PASTED_CODE_LENGTH, {
    message: () => `must be a non-empty string of at most ${MAX_PASTED_CODE_LENGTH} characters`
  })
)

/** `oauth_initiate`'s answer: what the user must do, per flow. */
export const InitiateData = Schema.Union(
  Schema.Struct({
    flow_type: Schema.Literal("device_code"),
    session_id: Schema.String,
    verification_uri: Schema.String,
    verification_uri_complete: Schema.optional(Schema.String),
    user_code: Schema.String,
    pollIntervalMs: Schema.Number,
    expiresInSeconds: Schema.Number
  }),
  Schema.Struct({
    flow_type: Schema.Literal("pkce_redirect"),
    session_id: Schema.String,
    auth_url: Schema.String,
    expiresInSeconds: Schema.Number
  }),
  Schema.Struct({
    flow_type: Schema.Literal("browser_redirect"),
    session_id: Schema.String,
    auth_url: Schema.String,
    pollIntervalMs: Schema.Number,
    expiresInSeconds: Schema.Number
  })
)
export type InitiateData = typeof InitiateData.Type

/** The terminal errors `oauth_poll` reports (as data, not as a failed request). */
export const LoginErrorCode = Schema.Literal("ACCESS_DENIED", "EXPIRED_TOKEN", "EXCHANGE_FAILED")
export type LoginErrorCode = typeof LoginErrorCode.Type

export const ExchangeData = Schema.Struct({ token: SanitizedToken })

export const PollData = Schema.Union(
  Schema.Struct({ status: Schema.Literal("pending"), pollIntervalMs: Schema.Number }),
  Schema.Struct({ status: Schema.Literal("complete"), token: SanitizedToken }),
  Schema.Struct({ status: Schema.Literal("error"), code: LoginErrorCode, error: Schema.String })
)
export type PollData = typeof PollData.Type
