import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as oauth from "oauth4webapi"
import { RefreshFailure } from "../errors/errors.js"
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

const failure = (provider: string, reason: Reason, detail: string) =>
  new RefreshFailure({ provider, reason, detail })

/** Transient for 5xx and 429, Rejected for 401, Invalid for any other status. */
const byStatus = (status: number): Reason =>
  status >= 500 || status === 429 || status === 408 ? "Transient" : status === 401 ? "Rejected" : "Invalid"

const causeCode = (error: unknown): string | undefined => {
  const cause = (error as { cause?: { code?: unknown } } | undefined)?.cause
  return typeof cause?.code === "string" ? cause.code : undefined
}

/** Sorts what oauth4webapi or fetch threw into the three kinds; `detail` holds codes and statuses only. */
export const classify = (provider: string, error: unknown): RefreshFailure => {
  if (error instanceof oauth.ResponseBodyError) {
    const code = /^[\x21-\x7e]{1,64}$/.test(error.error) ? error.error : "error"
    const reason: Reason =
      code === "invalid_grant"
        ? "Rejected"
        : code === "temporarily_unavailable"
          ? "Transient"
          : byStatus(error.status)
    return failure(provider, reason, `${code}, HTTP ${error.status}`)
  }
  if (error instanceof oauth.WWWAuthenticateChallengeError) {
    return failure(provider, byStatus(error.status), `HTTP ${error.status} with a challenge`)
  }
  if (error instanceof oauth.OperationProcessingError) {
    if (error.code === oauth.RESPONSE_IS_NOT_CONFORM && error.cause instanceof Response) {
      return failure(provider, byStatus(error.cause.status), `unexpected HTTP ${error.cause.status}`)
    }
    return failure(provider, "Invalid", `malformed answer (${error.code ?? "unknown"})`)
  }
  if (error instanceof oauth.UnsupportedOperationError) {
    return failure(provider, "Invalid", `unsupported answer (${error.code})`)
  }
  // fetch rejects with a TypeError for network failures (refused, reset, DNS, TLS); the
  // library's own argument checks throw TypeErrors with an ERR_ code, which are not transient.
  if (error instanceof TypeError && !("code" in error)) {
    return failure(provider, "Transient", `network error (${causeCode(error) ?? "fetch failed"})`)
  }
  return failure(provider, "Invalid", error instanceof Error ? error.name : "unknown error")
}

const requestOptions = (url: URL, signal: AbortSignal) =>
  isLoopbackHttp(url) ? { signal, [oauth.allowInsecureRequests]: true } : { signal }

/** The issuer's metadata: OpenID Connect discovery first, then OAuth 2.0 (RFC 8414). */
const discover = async (issuer: URL, signal: AbortSignal): Promise<oauth.AuthorizationServer> => {
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
      return Effect.fail(failure(provider.name, "Invalid", "no token endpoint and no issuer"))
    }
    return Effect.tryPromise({
      try: (signal) => discover(new URL(issuer), signal),
      catch: (error) => classify(provider.name, error)
    }).pipe(
      Effect.flatMap((metadata) => {
        const endpoint = metadata.token_endpoint
        if (endpoint === undefined || endpointProblem(endpoint) !== undefined) {
          return Effect.fail(
            failure(provider.name, "Invalid", "the issuer's metadata has no usable token endpoint")
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
