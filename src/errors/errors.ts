import * as Schema from "effect/Schema"

/**
 * Every failure a request can end in, one tagged error per kind. Messages are
 * derived from safe fields; a store's raw error lives in `cause` and only ever
 * reaches the host's log, never the socket (see `toWireError`).
 */

/** A frame, envelope, payload or name failed validation. */
export class InvalidRequest extends Schema.TaggedError<InvalidRequest>()("InvalidRequest", {
  reason: Schema.String
}) {}

/** An operation the protocol names but this server does not offer yet. */
export class OperationUnavailable extends Schema.TaggedError<OperationUnavailable>()("OperationUnavailable", {
  op: Schema.String
}) {}

/** The access policy (or a connection gate) refused the request. */
export class Unauthorized extends Schema.TaggedError<Unauthorized>()("Unauthorized", {
  reason: Schema.String
}) {}

/** The per-connection rate limit was exceeded; `retryAfter` is in seconds (> 0). */
export class RateLimited extends Schema.TaggedError<RateLimited>()("RateLimited", {
  retryAfter: Schema.Number
}) {}

/** Nothing is stored under the name asked for. */
export class NotFound extends Schema.TaggedError<NotFound>()("NotFound", {
  what: Schema.Literal("token", "api key")
}) {}

/** No overlap between the client's version range and the server's. */
export class UnknownVersion extends Schema.TaggedError<UnknownVersion>()("UnknownVersion", {
  minVersion: Schema.Number,
  maxVersion: Schema.Number
}) {}

/** A store call failed; `operation` says which, `cause` holds the underlying error for the log. */
export class StoreFailure extends Schema.TaggedError<StoreFailure>()("StoreFailure", {
  operation: Schema.String,
  cause: Schema.Defect
}) {}

/** A store call did not finish within its deadline. */
export class StoreTimeout extends Schema.TaggedError<StoreTimeout>()("StoreTimeout", {
  operation: Schema.String
}) {}

/** A response would exceed the frame limit; it is never sent. */
export class ResponseTooLarge extends Schema.TaggedError<ResponseTooLarge>()("ResponseTooLarge", {
  bytes: Schema.Number
}) {}

/** A handler died unexpectedly; the connection and the server carry on. */
export class HandlerDefect extends Schema.TaggedError<HandlerDefect>()("HandlerDefect", {
  cause: Schema.Defect
}) {}

/** `refresh_token` for a provider the host has no configuration for (PROTOCOL.md §16). */
export class ProviderNotFound extends Schema.TaggedError<ProviderNotFound>()("ProviderNotFound", {
  provider: Schema.String
}) {
  override get message(): string {
    return `provider ${this.provider} is not configured (add it to the providers file)`
  }
}

/**
 * The host must log in again: no refresh token is stored (`NoRefreshToken`),
 * or the provider rejected it (`Rejected`: invalid_grant or 401), in which
 * case the stored refresh token has been cleared.
 */
export class ReauthRequired extends Schema.TaggedError<ReauthRequired>()("ReauthRequired", {
  reason: Schema.Literal("NoRefreshToken", "Rejected")
}) {
  override get message(): string {
    return this.reason === "Rejected"
      ? "the provider rejected the refresh token; log in again on the host"
      : "no refresh token is stored; log in again on the host"
  }
}

/** A refresh within the 30 s cooldown of the last one, while the stored token is no longer valid. */
export class RefreshCooldown extends Schema.TaggedError<RefreshCooldown>()("RefreshCooldown", {
  retryAfter: Schema.Number
}) {
  override get message(): string {
    return `the token was refreshed moments ago; retry in ${this.retryAfter} s`
  }
}

/**
 * A refresh at the provider's token endpoint failed. `Transient` (network
 * error, 5xx, timeout) is retried; `Rejected` (invalid_grant, 401) means the
 * refresh token is no good; `Invalid` is any other error answer or a malformed
 * response. `detail` is safe to log (an OAuth error code, a status, a kind of
 * failure). The library's own error is not kept: it can carry the response
 * body, and a token endpoint's body holds tokens.
 */
export class RefreshFailure extends Schema.TaggedError<RefreshFailure>()("RefreshFailure", {
  reason: Schema.Literal("Transient", "Rejected", "Invalid"),
  provider: Schema.String,
  detail: Schema.String
}) {
  override get message(): string {
    return `refresh at provider ${this.provider} failed (${this.detail})`
  }
}

export type StoreError = StoreFailure | StoreTimeout

export type ProxyError =
  | InvalidRequest
  | OperationUnavailable
  | Unauthorized
  | RateLimited
  | NotFound
  | UnknownVersion
  | StoreFailure
  | StoreTimeout
  | ResponseTooLarge
  | HandlerDefect
  | ProviderNotFound
  | ReauthRequired
  | RefreshCooldown
  | RefreshFailure
