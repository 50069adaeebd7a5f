import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as oauth from "oauth4webapi"
import { errorCode, oauthErrorCode, RefreshFailure } from "../errors/errors.js"
import { endpointProblem, isLoopbackHttp, type OAuthProvider } from "../services/OAuthProviders.js"
import { type RefreshedToken, TokenRefresher, type TokenRefresherShape } from "../services/TokenRefresher.js"

/**
 * The refresh-token grant (RFC 6749 §6) on `oauth4webapi`: client
 * authentication `client_secret_post` when the provider has a secret, else
 * none (public client). Plain http is allowed only for loopback endpoints
 * (the providers file refuses any other http endpoint). A provider given by
 * `issuer` alone has its token endpoint discovered from the issuer's metadata
 * (OpenID Connect discovery, then RFC 8414) on first use, and cached.
 *
 * The issuer (or, without one, the token endpoint's origin) is also the `iss`
 * an ID token in a refresh answer must carry: oauth4webapi validates it.
 */

type Reason = RefreshFailure["reason"]

/** Transient for 5xx, 408 and 429, Rejected for 401, Invalid for any other status. */
const byStatus = (status: number): Reason =>
  status >= 500 || status === 429 || status === 408 ? "Transient" : status === 401 ? "Rejected" : "Invalid"

const causeCode = (error: unknown): string | undefined => errorCode((error as { cause?: unknown }).cause)

/**
 * Sorts what oauth4webapi or fetch threw into the three kinds. Only the
 * answer's `error` code (when it is a standard one), the HTTP status and a
 * network error code are kept: the rest of an answer can hold tokens (a
 * provider may even echo the refresh token in `error`).
 */
export const classify = (provider: string, error: unknown): RefreshFailure => {
  if (error instanceof oauth.ResponseBodyError) {
    const code = oauthErrorCode(error.error)
    const reason: Reason =
      code === "invalid_grant"
        ? "Rejected"
        : code === "temporarily_unavailable"
          ? "Transient"
          : byStatus(error.status)
    return new RefreshFailure({ provider, reason, kind: "ErrorAnswer", error: code, status: error.status })
  }
  if (error instanceof oauth.WWWAuthenticateChallengeError) {
    return new RefreshFailure({
      provider,
      reason: byStatus(error.status),
      kind: "HttpStatus",
      status: error.status
    })
  }
  if (error instanceof oauth.OperationProcessingError) {
    if (error.code === oauth.RESPONSE_IS_NOT_CONFORM && error.cause instanceof Response) {
      const status = error.cause.status
      return new RefreshFailure({ provider, reason: byStatus(status), kind: "HttpStatus", status })
    }
    return new RefreshFailure({ provider, reason: "Invalid", kind: "Malformed" })
  }
  if (error instanceof oauth.UnsupportedOperationError) {
    return new RefreshFailure({ provider, reason: "Invalid", kind: "Malformed" })
  }
  // fetch rejects with a TypeError for network failures (refused, reset, DNS, TLS); the
  // library's own argument checks throw TypeErrors with an ERR_ code, which are not transient.
  if (error instanceof TypeError && !("code" in error)) {
    const code = causeCode(error)
    return new RefreshFailure({
      provider,
      reason: "Transient",
      kind: "Network",
      ...(code === undefined ? {} : { code })
    })
  }
  return new RefreshFailure({ provider, reason: "Invalid", kind: "Malformed" })
}

const requestOptions = (url: URL, signal: AbortSignal) =>
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

export const make: Effect.Effect<TokenRefresherShape> = Effect.sync(() => {
  const discovered = new Map<string, oauth.AuthorizationServer>()

  const authorizationServer = (
    provider: OAuthProvider
  ): Effect.Effect<oauth.AuthorizationServer, RefreshFailure> => {
    if (provider.tokenEndpoint !== undefined) {
      const issuer = provider.issuer ?? new URL(provider.tokenEndpoint).origin
      return Effect.succeed({ issuer, token_endpoint: provider.tokenEndpoint })
    }
    const cached = discovered.get(provider.name)
    if (cached !== undefined) return Effect.succeed(cached)
    const issuer = provider.issuer
    if (issuer === undefined) {
      return Effect.fail(
        new RefreshFailure({ provider: provider.name, reason: "Invalid", kind: "NoEndpoint" })
      )
    }
    return Effect.tryPromise({
      try: (signal) => discover(new URL(issuer), signal),
      catch: (error) => classify(provider.name, error)
    }).pipe(
      Effect.flatMap((metadata) => {
        const endpoint = metadata.token_endpoint
        if (endpoint === undefined || endpointProblem(endpoint) !== undefined) {
          return Effect.fail(
            new RefreshFailure({ provider: provider.name, reason: "Invalid", kind: "NoEndpoint" })
          )
        }
        discovered.set(provider.name, metadata)
        return Effect.succeed(metadata)
      })
    )
  }

  const refresh = (
    provider: OAuthProvider,
    refreshToken: string
  ): Effect.Effect<RefreshedToken, RefreshFailure> =>
    Effect.flatMap(authorizationServer(provider), (as) =>
      Effect.tryPromise({
        try: async (signal) => {
          const client: oauth.Client = { client_id: provider.clientId }
          const auth =
            provider.clientSecret === undefined ? oauth.None() : oauth.ClientSecretPost(provider.clientSecret)
          const url = new URL(as.token_endpoint as string)
          const response = await oauth.refreshTokenGrantRequest(
            as,
            client,
            auth,
            refreshToken,
            requestOptions(url, signal)
          )
          const answer: RefreshedToken = await oauth.processRefreshTokenResponse(as, client, response)
          return answer
        },
        catch: (error) => classify(provider.name, error)
      })
    )

  return TokenRefresher.of({ refresh })
})

/** The refresher that talks to real token endpoints. */
export const layer: Layer.Layer<TokenRefresher> = Layer.effect(TokenRefresher, make)
