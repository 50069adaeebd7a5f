import * as oauth from "oauth4webapi"
import { errorCode } from "../errors/errors.js"
import { oauthErrorCode, type ProviderCallIssue } from "../errors/provider-call.js"
import { isLoopbackHttp } from "../services/OAuthProviders.js"

/**
 * What every call to a provider shares, on `oauth4webapi`: the request
 * options (plain http only on loopback), metadata discovery, and the one
 * classification of what a failed call threw.
 */

type Reason = ProviderCallIssue["reason"]

/** Transient for 5xx, 408 and 429, Rejected for 401, Invalid for any other status. */
const byStatus = (status: number): Reason =>
  status >= 500 || status === 429 || status === 408 ? "Transient" : status === 401 ? "Rejected" : "Invalid"

const causeCode = (error: unknown): string | undefined => errorCode((error as { cause?: unknown }).cause)

const MALFORMED: ProviderCallIssue = { reason: "Invalid", kind: "Malformed" }

/**
 * Sorts what oauth4webapi or fetch threw into the three kinds. Only the
 * answer's `error` code (when it is a standard one), the HTTP status and a
 * network error code are kept: the rest of an answer can hold secrets (a
 * provider may even echo a token in `error`).
 */
export const classifyProviderError = (error: unknown): ProviderCallIssue => {
  if (error instanceof oauth.ResponseBodyError) {
    const code = oauthErrorCode(error.error)
    const reason: Reason =
      code === "invalid_grant"
        ? "Rejected"
        : code === "temporarily_unavailable"
          ? "Transient"
          : byStatus(error.status)
    return { reason, kind: "ErrorAnswer", error: code, status: error.status }
  }
  if (error instanceof oauth.AuthorizationResponseError) {
    // An error redirect of the authorization endpoint (the user refused, the request was bad).
    return { reason: "Rejected", kind: "ErrorAnswer", error: oauthErrorCode(error.error) }
  }
  if (error instanceof oauth.WWWAuthenticateChallengeError) {
    return { reason: byStatus(error.status), kind: "HttpStatus", status: error.status }
  }
  if (error instanceof oauth.OperationProcessingError) {
    if (error.code === oauth.RESPONSE_IS_NOT_CONFORM && error.cause instanceof Response) {
      const status = error.cause.status
      return { reason: byStatus(status), kind: "HttpStatus", status }
    }
    return MALFORMED
  }
  if (error instanceof oauth.UnsupportedOperationError) return MALFORMED
  // fetch rejects with a TypeError for network failures (refused, reset, DNS, TLS); the
  // library's own argument checks throw TypeErrors with an ERR_ code, which are not transient.
  if (error instanceof TypeError && !("code" in error)) {
    const code = causeCode(error)
    return { reason: "Transient", kind: "Network", ...(code === undefined ? {} : { code }) }
  }
  return MALFORMED
}

/** Options of one request to `url`: cancelled by `signal`, plain http allowed only on loopback. */
export const requestOptions = (url: URL, signal: AbortSignal) =>
  isLoopbackHttp(url) ? { signal, [oauth.allowInsecureRequests]: true } : { signal }

/** The issuer's metadata: OpenID Connect discovery first, then OAuth 2.0 (RFC 8414). */
export const discover = async (issuer: URL, signal: AbortSignal): Promise<oauth.AuthorizationServer> => {
  const oidc = await oauth.discoveryRequest(issuer, { ...requestOptions(issuer, signal), algorithm: "oidc" })
  if (oidc.status === 404) {
    await oidc.body?.cancel()
    const rfc8414 = await oauth.discoveryRequest(issuer, {
      ...requestOptions(issuer, signal),
      algorithm: "oauth2"
    })
    return oauth.processDiscoveryResponse(issuer, rfc8414)
  }
  return oauth.processDiscoveryResponse(issuer, oidc)
}
