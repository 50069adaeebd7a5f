import { MAX_ID_LENGTH, MAX_STORED_TOKEN_BYTES, PROTOCOL_VERSIONS } from "../protocol/limits.js"
import { formatFieldIssue } from "../protocol/parse-issue.js"
import { WireCode } from "../protocol/wire-codes.js"
import type { InvalidRequest, ProxyError, Unauthorized } from "./errors.js"

/** What an error looks like on the wire: a code, a safe message, and `retryAfter` for rate limits. */
export interface WireError {
  readonly code: WireCode
  readonly message: string
  readonly retryAfter?: number
}

const invalidRequestText = (error: InvalidRequest): string => {
  switch (error.reason) {
    case "NotAnObject":
      return "frame is not a JSON object"
    case "UnusableId":
      return `id must be a non-empty string of at most ${MAX_ID_LENGTH} characters`
    case "UnknownOperation":
      return "op is not a known operation"
    case "FrameTooLarge":
      return "frame too large"
    case "InvalidField":
      return error.issue === undefined ? "request is invalid" : formatFieldIssue(error.issue)
    case "InvalidHandshake":
      return `handshake ${error.issue === undefined ? "is invalid" : formatFieldIssue(error.issue)}`
    case "TokenTooLarge":
      return `token too large: at most ${MAX_STORED_TOKEN_BYTES} bytes as stored`
    case "InvalidPolicy":
      return error.detail ?? "invalid policy pattern"
    case "NotForThisFlow":
      return "this operation does not apply to the login session's flow"
    case "MalformedCode":
      return "payload.code must be an authorization code, optionally followed by #STATE"
  }
}

const UNAUTHORIZED_TEXTS: Record<Unauthorized["reason"], string> = {
  Policy: "not allowed by the access policy",
  CapabilityToken: "capability token missing or wrong",
  NotConfirmed: "not confirmed on the host"
}

const SESSION_CODES = {
  NotFound: WireCode.SESSION_NOT_FOUND,
  Expired: WireCode.SESSION_EXPIRED,
  AlreadyUsed: WireCode.SESSION_ALREADY_USED
} as const

/**
 * The one place where failures become wire codes and client-facing text,
 * built from each error's reason and safe fields: never a store's raw error,
 * never a value the client sent.
 */
export const toWireError = (error: ProxyError): WireError => {
  switch (error._tag) {
    case "InvalidRequest":
      return { code: WireCode.INVALID_REQUEST, message: invalidRequestText(error) }
    case "Unauthorized":
      return {
        code: WireCode.UNAUTHORIZED,
        message: UNAUTHORIZED_TEXTS[error.reason]
      }
    case "Forbidden":
      return {
        code: WireCode.FORBIDDEN,
        message: error.reason === "StoreLimit" ? "store limit reached" : "access denied"
      }
    case "Cancelled":
      return { code: WireCode.CANCELLED, message: "request cancelled" }
    case "Stopping":
      return { code: WireCode.INTERNAL_ERROR, message: "the proxy is stopping" }
    case "RateLimited":
      return { code: WireCode.RATE_LIMITED, message: "rate limit exceeded", retryAfter: error.retryAfter }
    case "NotFound":
      return { code: WireCode.NOT_FOUND, message: `${error.what} not found` }
    case "UnknownVersion":
      return {
        code: WireCode.UNKNOWN_VERSION,
        message: `no common protocol version: this server supports versions ${PROTOCOL_VERSIONS.min} to ${PROTOCOL_VERSIONS.max}`
      }
    case "StoreFailure":
    case "StoreTimeout":
      return { code: WireCode.INTERNAL_ERROR, message: "credential store unavailable" }
    case "ResponseTooLarge":
      return { code: WireCode.INTERNAL_ERROR, message: "response too large" }
    case "HandlerDefect":
      return { code: WireCode.INTERNAL_ERROR, message: "internal error" }
    case "ProviderNotFound":
      return {
        code: WireCode.PROVIDER_NOT_FOUND,
        message:
          error.login === undefined
            ? "provider not configured on the host"
            : "provider has no usable login on the host"
      }
    case "LoginSessionError":
      return { code: SESSION_CODES[error.reason], message: error.message }
    case "LoginSessionLimit":
      return { code: WireCode.RATE_LIMITED, message: error.message, retryAfter: error.retryAfter }
    case "LoginStartFailed":
      return { code: WireCode.INTERNAL_ERROR, message: error.message }
    case "ExchangeFailed":
      return { code: WireCode.EXCHANGE_FAILED, message: error.message }
    case "ReauthRequired":
      return { code: WireCode.REAUTH_REQUIRED, message: error.message }
    case "RefreshCooldown":
      return {
        code: WireCode.RATE_LIMITED,
        message: "token refreshed moments ago",
        retryAfter: error.retryAfter
      }
    case "RefreshFailure":
      return {
        code: WireCode.INTERNAL_ERROR,
        message:
          error.reason === "Transient" ? "provider unreachable" : "provider did not complete the refresh"
      }
  }
}
