import * as crypto from "node:crypto"
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import type { InvalidRequest, ProviderNotFound, StoreError } from "../errors/errors.js"
import type {
  ExchangeFailed,
  LoginSessionError,
  LoginSessionLimit,
  LoginStartFailed
} from "../errors/login-errors.js"
import type { InitiateData, LoginErrorCode, LoginFlow } from "../protocol/login.js"
import type { OAuthToken } from "../protocol/token.js"
import type { LoginServer } from "./LoginClient.js"
import type { OAuthProvider } from "./OAuthProviders.js"
import type { TokenKey } from "./TokenStore.js"

/**
 * OAuth login sessions (PROTOCOL.md §17): each login the host runs for a
 * caller, from `oauth_initiate` to a stored token. The rules are here; the
 * Layer is `layers/LoginSessionsLive.ts`. A session belongs to one identity
 * (an opaque string: the connection's peer uid and capability token digest,
 * or the host's own for `credproxy login`); any other identity is told it
 * does not exist.
 */

/** A session lives this long (or the device code's lifetime, when shorter). */
export const SESSION_LIFETIME_MS = 10 * 60_000
/** Expired sessions are collected this often; until then they answer `SESSION_EXPIRED`. */
export const COLLECTION_INTERVAL_MS = 60_000
/** Live sessions one identity may hold. */
export const MAX_SESSIONS_PER_IDENTITY = 8
/** Sessions (live or finished, not yet collected) the server holds for all identities. */
export const MAX_SESSIONS = 64
/** The device polling interval when the provider names none, and what `slow_down` adds (RFC 8628 §3.5). */
export const DEFAULT_POLL_INTERVAL_MS = 5_000
export const SLOW_DOWN_STEP_MS = 5_000
/** How often a client should ask about a browser login. */
export const BROWSER_POLL_INTERVAL_MS = 1_000
/** Transient failures in a row after which device polling gives up. */
export const MAX_TRANSIENT_POLL_FAILURES = 3
/** The environment variable that overrides the 10 min lifetime (in seconds). */
export const SESSION_TIMEOUT_ENV = "LLXPRT_OAUTH_SESSION_TIMEOUT_SECONDS"

/** How a finished login ended, as `oauth_poll` reports it. */
export type LoginOutcome =
  | { readonly _tag: "Complete"; readonly token: OAuthToken }
  | { readonly _tag: "Failed"; readonly code: LoginErrorCode; readonly message: string }

/** What `oauth_poll` answers for a session. */
export type PollStatus = { readonly _tag: "Pending"; readonly pollIntervalMs: number } | LoginOutcome

export type LoginError =
  | ProviderNotFound
  | InvalidRequest
  | LoginSessionError
  | LoginSessionLimit
  | LoginStartFailed
  | ExchangeFailed
  | StoreError

export interface LoginSessionsShape {
  /** Starts a login of `key` for `owner`; `flow` overrides the provider's (the host's `credproxy login --flow`). */
  readonly initiate: (
    owner: string,
    key: TokenKey,
    options?: { readonly flow?: LoginFlow | undefined }
  ) => Effect.Effect<InitiateData, LoginError>
  /** Exchanges a pasted code (`CODE` or `CODE#STATE`) of a `pkce_redirect` session; the stored token. */
  readonly exchange: (owner: string, sessionId: string, code: string) => Effect.Effect<OAuthToken, LoginError>
  /** Reports a `device_code` or `browser_redirect` session; a terminal answer is given once. */
  readonly poll: (owner: string, sessionId: string) => Either.Either<PollStatus, LoginError>
  /** Ends a session of `owner` at once (its polling or its listener); nothing for any other. */
  readonly cancel: (owner: string, sessionId: string) => Effect.Effect<void>
  /** Sessions held now (live or finished, not yet collected). */
  readonly size: () => number
}

export class LoginSessions extends Context.Tag("credproxy/LoginSessions")<
  LoginSessions,
  LoginSessionsShape
>() {}

/** A session id: 16 random bytes as 32 lowercase hex characters. */
export const newSessionId = (): string => crypto.randomBytes(16).toString("hex")

/** The first characters of a session id, the only part a log line may carry. */
export const sessionIdPrefix = (id: string): string => id.slice(0, 8)

type Missing = NonNullable<ProviderNotFound["login"]>["missing"]

/**
 * The flow of a login: asked for (`--flow`), else the provider's, else
 * `device_code` when a device endpoint is known and `browser_redirect`
 * otherwise; then whether the provider has what that flow needs.
 */
export const chooseFlow = (
  provider: OAuthProvider,
  server: Pick<LoginServer, "authorizationEndpoint" | "deviceAuthorizationEndpoint">,
  asked?: LoginFlow
): Either.Either<LoginFlow, { readonly flow: LoginFlow; readonly missing: Missing }> => {
  const flow =
    asked ??
    provider.login?.flow ??
    (server.deviceAuthorizationEndpoint === undefined ? "browser_redirect" : "device_code")
  if (flow === "device_code") {
    return server.deviceAuthorizationEndpoint === undefined
      ? Either.left({ flow, missing: "deviceAuthorizationEndpoint" })
      : Either.right(flow)
  }
  if (server.authorizationEndpoint === undefined)
    return Either.left({ flow, missing: "authorizationEndpoint" })
  if (flow === "pkce_redirect" && provider.login?.redirectUri === undefined) {
    return Either.left({ flow, missing: "redirectUri" })
  }
  return Either.right(flow)
}

const CODE_PATTERN = /^[\x21-\x7e]+$/

/**
 * A pasted code: `CODE`, or `CODE#STATE` as some providers' code pages show
 * it (split at the first `#`), without surrounding whitespace. `undefined`
 * when it is not that shape (empty, or holding spaces or control characters).
 */
export const splitPastedCode = (
  pasted: string
): { readonly code: string; readonly state: string | undefined } | undefined => {
  const text = pasted.trim()
  const hash = text.indexOf("#")
  const code = hash < 0 ? text : text.slice(0, hash)
  const state = hash < 0 ? undefined : text.slice(hash + 1)
  if (!CODE_PATTERN.test(code) || (state !== undefined && state !== "" && !CODE_PATTERN.test(state))) {
    return undefined
  }
  return { code, state }
}

/** Equal strings, compared in constant time (both hashed first, so lengths do not leak either). */
export const sameSecret = (a: string, b: string): boolean =>
  crypto.timingSafeEqual(
    crypto.createHash("sha256").update(a, "utf8").digest(),
    crypto.createHash("sha256").update(b, "utf8").digest()
  )
