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
