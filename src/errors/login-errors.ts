import * as Schema from "effect/Schema"
import { MAX_STORED_TOKEN_BYTES } from "../protocol/limits.js"
import { LoginErrorCode } from "../protocol/login.js"
import { OAuthErrorCode, ProviderCallFields } from "./provider-call.js"

/**
 * The failures of an OAuth login (PROTOCOL.md §17). Like every error here
 * they carry reasons and safe fields (codes, statuses), never a code, a
 * verifier, a state or a token; the texts are built from those fields.
 */

const SESSION_TEXTS = {
  NotFound: "login session not found",
  Expired: "login session expired; start a new login",
  AlreadyUsed: "login session already used; start a new login"
} as const

/** The session asked for is unknown (or another identity's), past its lifetime, or spent. */
export class LoginSessionError extends Schema.TaggedError<LoginSessionError>()("LoginSessionError", {
  reason: Schema.Literal("NotFound", "Expired", "AlreadyUsed")
}) {
  override get message(): string {
    return SESSION_TEXTS[this.reason]
  }
}

/** An identity holds as many live sessions as it may (or the server does): `retryAfter` seconds until one ends. */
export class LoginSessionLimit extends Schema.TaggedError<LoginSessionLimit>()("LoginSessionLimit", {
  retryAfter: Schema.Number
}) {
  override get message(): string {
    return "too many login sessions in progress"
  }
}

/** The provider did not start a login: metadata discovery or the device authorization request failed. */
export class LoginStartFailed extends Schema.TaggedError<LoginStartFailed>()("LoginStartFailed", {
  provider: Schema.String,
  /** What the failed call was (safe fields only). */
  call: Schema.Struct(ProviderCallFields)
}) {
  override get message(): string {
    const { reason, error } = this.call
    return reason === "Transient"
      ? "provider unreachable"
      : `the provider did not start the login${error === undefined ? "" : ` (${error})`}`
  }
}

const EXCHANGE_TEXTS = {
  StateMismatch: "the code's state does not match the login session",
  Unreachable: "provider unreachable",
  BadAnswer: "the provider's answer is not a usable token",
  TokenTooLarge: `the provider's token is larger than ${MAX_STORED_TOKEN_BYTES} bytes`,
  StoreLimit: "store limit reached",
  StoreFailed: "the token could not be stored on the host"
} as const

/**
 * A code could not be turned into a stored token: the pasted state is not
 * the session's, the provider refused the code or could not be reached, its
 * answer is not a token, or the token could not be stored.
 */
export class ExchangeFailed extends Schema.TaggedError<ExchangeFailed>()("ExchangeFailed", {
  provider: Schema.String,
  reason: Schema.Literal(
    "StateMismatch",
    "Refused",
    "Unreachable",
    "BadAnswer",
    "TokenTooLarge",
    "StoreLimit",
    "StoreFailed"
  ),
  error: Schema.optional(OAuthErrorCode)
}) {
  override get message(): string {
    return this.reason === "Refused"
      ? `the provider refused the code${this.error === undefined ? "" : ` (${this.error})`}`
      : EXCHANGE_TEXTS[this.reason]
  }
}

/** A login the host ran for itself (`credproxy login`) ended without a token: refused, expired, failed. */
export class LoginFailed extends Schema.TaggedError<LoginFailed>()("LoginFailed", {
  code: LoginErrorCode,
  text: Schema.String
}) {
  override get message(): string {
    return `the login did not complete: ${this.text} (${this.code})`
  }
}
