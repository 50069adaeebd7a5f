import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type { ProviderCallIssue } from "../errors/provider-call.js"
import type { OAuthProvider } from "./OAuthProviders.js"
import type { RefreshedToken } from "./TokenRefresher.js"

/**
 * The provider's side of a login (PROTOCOL.md §17): discovery, PKCE and
 * state, the authorization URL, the device authorization request and its
 * polls, the code exchange. One HTTP exchange per call, no retries and no
 * deadline (the sessions add the deadline); every failure is a
 * `ProviderCallIssue` (safe fields only). The Layer on `oauth4webapi` is
 * `layers/OAuthLoginClient.ts`.
 */

/** A provider's endpoints as a login uses them: given in the providers file, or from its issuer's metadata. */
export interface LoginServer {
  /** What an ID token must carry as `iss`, and a redirect as `iss` when the server says it sends one. */
  readonly issuer: string
  readonly tokenEndpoint: string
  readonly authorizationEndpoint?: string
  readonly deviceAuthorizationEndpoint?: string
  /** The server adds `iss` to its redirects (RFC 9207); the browser flow then checks it. */
  readonly issuerInRedirects: boolean
}

/** The device authorization answer (RFC 8628 §3.2). */
export interface DeviceAuthorization {
  readonly deviceCode: string
  readonly expiresInSeconds: number
  /** The provider's polling interval; absent means 5 s. */
  readonly intervalSeconds?: number
  /** What the user is shown, under the names `oauth_initiate` answers with. */
  readonly shown: {
    readonly verification_uri: string
    readonly verification_uri_complete?: string
    readonly user_code: string
  }
}

/** The secrets of one authorization request: PKCE verifier and its S256 challenge, and the state. */
export interface AuthorizationSecrets {
  readonly verifier: string
  readonly challenge: string
  readonly state: string
}

export interface CodeExchange {
  /** The redirect's parameters (`code`, and `iss` or `error` when the server sent them). */
  readonly callback: URLSearchParams
  readonly redirectUri: string
  readonly verifier: string
  /** The session's state: `callback` must carry it (the caller has already compared it in constant time). */
  readonly state: string
  /** Whether `iss` must be in `callback` when the server says it sends one (false for a pasted code). */
  readonly checkIssuer: boolean
}

export interface LoginClientShape {
  /** The provider's endpoints; discovery (when needed) is cached for the life of the service. */
  readonly server: (provider: OAuthProvider) => Effect.Effect<LoginServer, ProviderCallIssue>
  readonly secrets: Effect.Effect<AuthorizationSecrets>
  /** The authorization URL: client, redirect, scopes, state, challenge, and the provider's extra parameters. */
  readonly authorizationUrl: (
    provider: OAuthProvider,
    server: LoginServer,
    request: { readonly redirectUri: string; readonly secrets: AuthorizationSecrets }
  ) => string
  readonly deviceAuthorization: (
    provider: OAuthProvider,
    server: LoginServer
  ) => Effect.Effect<DeviceAuthorization, ProviderCallIssue>
  /** One poll of the device code grant; `authorization_pending`, `slow_down`, ... come back as the issue's `error`. */
  readonly deviceToken: (
    provider: OAuthProvider,
    server: LoginServer,
    deviceCode: string
  ) => Effect.Effect<RefreshedToken, ProviderCallIssue>
  readonly exchangeCode: (
    provider: OAuthProvider,
    server: LoginServer,
    exchange: CodeExchange
  ) => Effect.Effect<RefreshedToken, ProviderCallIssue>
}

export class LoginClient extends Context.Tag("credproxy/LoginClient")<LoginClient, LoginClientShape>() {}
