import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as oauth from "oauth4webapi"
import type { ProviderCallIssue } from "../errors/provider-call.js"
import {
  type AuthorizationSecrets,
  LoginClient,
  type LoginClientShape,
  type LoginServer
} from "../services/LoginClient.js"
import { endpointProblem, type OAuthProvider } from "../services/OAuthProviders.js"
import { classifyProviderError, discover, requestOptions } from "./oauth-http.js"

/**
 * The provider's side of a login on `oauth4webapi` (PROTOCOL.md §17):
 * discovery (OpenID Connect, then RFC 8414) when the providers file names an
 * issuer and leaves an endpoint out, PKCE S256 and state from its generators,
 * RFC 8628 device authorization and polls, validation of the redirect (state,
 * `iss`, error answers) and the code exchange, with ID token checks. Client
 * authentication is `client_secret_post` with a secret, else none.
 */

const NO_ENDPOINT: ProviderCallIssue = { reason: "Invalid", kind: "NoEndpoint" }

/** One call to the provider: cancelled with the fiber, failures classified. */
const call = <A>(run: (signal: AbortSignal) => Promise<A>): Effect.Effect<A, ProviderCallIssue> =>
  Effect.tryPromise({ try: run, catch: classifyProviderError })

/** A discovered endpoint is used only when it is https (or http on loopback), as a configured one must be. */
const usable = (endpoint: unknown): string | undefined =>
  typeof endpoint === "string" && endpointProblem(endpoint) === undefined ? endpoint : undefined

const clientOf = (provider: OAuthProvider): oauth.Client => ({ client_id: provider.clientId })

const authOf = (provider: OAuthProvider): oauth.ClientAuth =>
  provider.clientSecret === undefined ? oauth.None() : oauth.ClientSecretPost(provider.clientSecret)

/** The server as oauth4webapi reads it; `checkIssuer: false` for a pasted code, which carries no `iss`. */
const asOf = (server: LoginServer, checkIssuer = true): oauth.AuthorizationServer => ({
  issuer: server.issuer,
  token_endpoint: server.tokenEndpoint,
  ...(server.authorizationEndpoint === undefined
    ? {}
    : { authorization_endpoint: server.authorizationEndpoint }),
  ...(server.deviceAuthorizationEndpoint === undefined
    ? {}
    : { device_authorization_endpoint: server.deviceAuthorizationEndpoint }),
  authorization_response_iss_parameter_supported: checkIssuer && server.issuerInRedirects
})

/** The scopes and the provider's extra parameters of an authorization or device authorization request. */
const requestParameters = (provider: OAuthProvider): Record<string, string> => ({
  ...(provider.scopes.length === 0 ? {} : { scope: provider.scopes.join(" ") }),
  ...provider.login?.authorizationParams
})

/**
 * One request to `endpoint` of `server` and the processing of its answer,
 * with the client's id and authentication: the shape every call shares.
 */
const request =
  <A>(
    provider: OAuthProvider,
    endpoint: string,
    send: (
      as: oauth.AuthorizationServer,
      client: oauth.Client,
      auth: oauth.ClientAuth,
      options: ReturnType<typeof requestOptions>
    ) => Promise<Response>,
    process: (as: oauth.AuthorizationServer, client: oauth.Client, response: Response) => Promise<A>
  ) =>
  (server: LoginServer): Effect.Effect<A, ProviderCallIssue> =>
    call(async (signal) => {
      const as = asOf(server)
      const client = clientOf(provider)
      return process(
        as,
        client,
        await send(as, client, authOf(provider), requestOptions(new URL(endpoint), signal))
      )
    })

export const make: Effect.Effect<LoginClientShape> = Effect.sync(() => {
  const discovered = new Map<string, LoginServer>()

  /** Endpoints given in the file win; the issuer's metadata fills the missing ones. */
  const server = (provider: OAuthProvider): Effect.Effect<LoginServer, ProviderCallIssue> => {
    const given = {
      ...(provider.authorizationEndpoint === undefined
        ? {}
        : { authorizationEndpoint: provider.authorizationEndpoint }),
      ...(provider.deviceAuthorizationEndpoint === undefined
        ? {}
        : { deviceAuthorizationEndpoint: provider.deviceAuthorizationEndpoint })
    }
    const issuer = provider.issuer
    const complete =
      provider.tokenEndpoint !== undefined &&
      provider.authorizationEndpoint !== undefined &&
      provider.deviceAuthorizationEndpoint !== undefined
    if (issuer === undefined || complete) {
      if (provider.tokenEndpoint === undefined) return Effect.fail(NO_ENDPOINT)
      return Effect.succeed({
        issuer: issuer ?? new URL(provider.tokenEndpoint).origin,
        tokenEndpoint: provider.tokenEndpoint,
        issuerInRedirects: false,
        ...given
      })
    }
    const cached = discovered.get(provider.name)
    if (cached !== undefined) return Effect.succeed(cached)
    return Effect.flatMap(
      call((signal) => discover(new URL(issuer), signal)),
      (metadata): Effect.Effect<LoginServer, ProviderCallIssue> => {
        const tokenEndpoint = provider.tokenEndpoint ?? usable(metadata.token_endpoint)
        if (tokenEndpoint === undefined) return Effect.fail(NO_ENDPOINT)
        const authorizationEndpoint = given.authorizationEndpoint ?? usable(metadata.authorization_endpoint)
        const deviceAuthorizationEndpoint =
          given.deviceAuthorizationEndpoint ?? usable(metadata.device_authorization_endpoint)
        const resolved: LoginServer = {
          issuer: metadata.issuer,
          tokenEndpoint,
          issuerInRedirects: metadata.authorization_response_iss_parameter_supported === true,
          ...(authorizationEndpoint === undefined ? {} : { authorizationEndpoint }),
          ...(deviceAuthorizationEndpoint === undefined ? {} : { deviceAuthorizationEndpoint })
        }
        discovered.set(provider.name, resolved)
        return Effect.succeed(resolved)
      }
    )
  }

  const secrets: Effect.Effect<AuthorizationSecrets> = Effect.promise(async () => {
    const verifier = oauth.generateRandomCodeVerifier()
    return {
      verifier,
      challenge: await oauth.calculatePKCECodeChallenge(verifier),
      state: oauth.generateRandomState()
    }
  })

  return LoginClient.of({
    server,
    secrets,
    authorizationUrl: (provider, server, { redirectUri, secrets }) => {
      const url = new URL(server.authorizationEndpoint ?? "")
      const parameters = {
        ...requestParameters(provider),
        client_id: provider.clientId,
        response_type: "code",
        redirect_uri: redirectUri,
        state: secrets.state,
        code_challenge: secrets.challenge,
        code_challenge_method: "S256"
      }
      for (const [name, value] of Object.entries(parameters)) url.searchParams.set(name, value)
      return url.href
    },
    deviceAuthorization: (provider, server) =>
      Effect.map(
        request(
          provider,
          server.deviceAuthorizationEndpoint ?? "",
          (as, client, auth, options) =>
            oauth.deviceAuthorizationRequest(as, client, auth, requestParameters(provider), options),
          oauth.processDeviceAuthorizationResponse
        )(server),
        (answer) => ({
          deviceCode: answer.device_code,
          expiresInSeconds: answer.expires_in,
          ...(answer.interval === undefined ? {} : { intervalSeconds: answer.interval }),
          shown: {
            verification_uri: answer.verification_uri,
            user_code: answer.user_code,
            ...(answer.verification_uri_complete === undefined
              ? {}
              : { verification_uri_complete: answer.verification_uri_complete })
          }
        })
      ),
    deviceToken: (provider, server, deviceCode) =>
      request(
        provider,
        server.tokenEndpoint,
        (as, client, auth, options) => oauth.deviceCodeGrantRequest(as, client, auth, deviceCode, options),
        oauth.processDeviceCodeResponse
      )(server),
    exchangeCode: (provider, server, exchange) =>
      request(
        provider,
        server.tokenEndpoint,
        (as, client, auth, options) =>
          oauth.authorizationCodeGrantRequest(
            as,
            client,
            auth,
            // The redirect is checked first: state, `iss` where the server sends it, an error answer.
            oauth.validateAuthResponse(
              asOf(server, exchange.checkIssuer),
              client,
              exchange.callback,
              exchange.state
            ),
            exchange.redirectUri,
            exchange.verifier,
            options
          ),
        oauth.processAuthorizationCodeResponse
      )(server)
  })
})

/** The login client that talks to real authorization servers. */
export const layer: Layer.Layer<LoginClient> = Layer.effect(LoginClient, make)
