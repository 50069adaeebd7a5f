import * as Schema from "effect/Schema"

/** The message of a broken connection, which is never silently replaced (the session must restart). */
export const CONNECTION_LOST_MESSAGE = "Credential proxy connection lost. Restart the session."

/** The connection to the proxy broke; this client will not reconnect (the session must restart). */
export class ConnectionLost extends Schema.TaggedError<ConnectionLost>()("ConnectionLost", {}) {
  override get message(): string {
    return CONNECTION_LOST_MESSAGE
  }
}

/** The proxy could not be reached or refused the handshake. */
export class ProxyUnavailable extends Schema.TaggedError<ProxyUnavailable>()("ProxyUnavailable", {
  reason: Schema.String,
  code: Schema.optional(Schema.String)
}) {
  override get message(): string {
    return `Credential proxy unavailable: ${this.reason}`
  }
}

/** No answer within the client's request timeout (30 s). */
export class RequestTimeout extends Schema.TaggedError<RequestTimeout>()("RequestTimeout", {
  op: Schema.String
}) {
  override get message(): string {
    return `Credential proxy did not answer ${this.op} in time`
  }
}

/** The proxy answered with an error; `code` is the wire code (PROTOCOL.md §11). */
export class ProxyResponseError extends Schema.TaggedError<ProxyResponseError>()("ProxyResponseError", {
  op: Schema.String,
  code: Schema.String,
  reason: Schema.String,
  retryAfter: Schema.optional(Schema.Number)
}) {
  override get message(): string {
    return `${this.code}: ${this.reason}`
  }
}

/**
 * The proxy sent something this client cannot read: a frame over the
 * protocol's size limit, a frame that is not a JSON object, or an answer
 * without the protocol's shape. The connection is given up like a lost one.
 */
export class ProtocolViolation extends Schema.TaggedError<ProtocolViolation>()("ProtocolViolation", {
  reason: Schema.Literal("OversizeFrame", "NotJson", "NotAnAnswer", "UnexpectedData")
}) {
  override get message(): string {
    const what = {
      OversizeFrame: "a frame larger than the protocol allows",
      NotJson: "a frame that is not a JSON object",
      NotAnAnswer: "a frame that is not a protocol answer",
      UnexpectedData: "an answer whose data does not fit the operation"
    }[this.reason]
    return `Credential proxy sent ${what}. Restart the session.`
  }
}

export type ProxyClientError =
  | ConnectionLost
  | ProxyUnavailable
  | RequestTimeout
  | ProxyResponseError
  | ProtocolViolation

/**
 * A login ended without a token: refused at the provider (`ACCESS_DENIED`),
 * out of time (`EXPIRED_TOKEN`), or failed (`EXCHANGE_FAILED`; also when a
 * pasted code is needed and no `readCode` was given). `code` is one of those.
 */
export class LoginFailed extends Schema.TaggedError<LoginFailed>()("LoginFailed", {
  code: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `${this.code}: ${this.reason}`
  }
}
