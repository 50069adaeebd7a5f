import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as oauth from "oauth4webapi"
import { RefreshFailure } from "../errors/errors.js"
import { endpointProblem, type OAuthProvider } from "../services/OAuthProviders.js"
import { type RefreshedToken, TokenRefresher, type TokenRefresherShape } from "../services/TokenRefresher.js"
import { classifyProviderError, discover, requestOptions } from "./oauth-http.js"

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

/** What oauth4webapi or fetch threw, as a `RefreshFailure` of `provider`. */
const classify = (provider: string, error: unknown): RefreshFailure =>
  new RefreshFailure({ provider, ...classifyProviderError(error) })

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
