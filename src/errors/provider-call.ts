import * as Schema from "effect/Schema"

/**
 * The error codes of OAuth 2.0 error answers (RFC 6749 §5.2, RFC 8628 §3.5,
 * RFC 6750 §3.1): the only `error` values of a provider's answer that are
 * ever kept or logged. Anything else becomes `unrecognized` (a provider may
 * echo a secret in that field).
 */
export const OAuthErrorCode = Schema.Literal(
  "invalid_request",
  "invalid_client",
  "invalid_grant",
  "unauthorized_client",
  "unsupported_grant_type",
  "invalid_scope",
  "access_denied",
  "unsupported_response_type",
  "server_error",
  "temporarily_unavailable",
  "authorization_pending",
  "slow_down",
  "expired_token",
  "invalid_token",
  "insufficient_scope",
  "unrecognized"
)
export type OAuthErrorCode = typeof OAuthErrorCode.Type
const isKnownOAuthError = Schema.is(OAuthErrorCode)

/** The `error` field of a provider's answer, kept only when it is a standard code. */
export const oauthErrorCode = (value: unknown): OAuthErrorCode =>
  isKnownOAuthError(value) ? value : "unrecognized"

/**
 * What a failed call to a provider's endpoint was. `reason` decides what
 * happens next: `Transient` (network error, 5xx, 408, 429, timeout) may be
 * retried; `Rejected` (invalid_grant, 401) means the grant is no good;
 * `Invalid` is any other error answer or a malformed response. `kind` says
 * what was seen, with the OAuth `error` code (allowlisted), the HTTP status
 * or the network error code where there is one. No response body is ever kept.
 */
export const ProviderCallFields = {
  reason: Schema.Literal("Transient", "Rejected", "Invalid"),
  kind: Schema.Literal("ErrorAnswer", "HttpStatus", "Network", "Timeout", "Malformed", "NoEndpoint"),
  error: Schema.optional(OAuthErrorCode),
  status: Schema.optional(Schema.Number),
  code: Schema.optional(Schema.String)
}
export type ProviderCallIssue = Schema.Struct.Type<typeof ProviderCallFields>

/** A short, safe description of a failed provider call: the OAuth error code, the HTTP status, the network code. */
export const describeProviderCall = (issue: ProviderCallIssue): string => {
  const parts: Array<string> = [issue.kind]
  if (issue.error !== undefined) parts.push(issue.error)
  if (issue.status !== undefined) parts.push(`HTTP ${issue.status}`)
  if (issue.code !== undefined) parts.push(issue.code)
  return parts.join(", ")
}
