import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type { RefreshFailure } from "../errors/errors.js"
import type { OAuthProvider } from "./OAuthProviders.js"

/**
 * A token endpoint's answer to a refresh grant: the fields of its JSON body
 * (RFC 6749 §5.1), provider-specific ones included. `expires_in` is relative;
 * the coordinator turns it into the stored `expiry`.
 */
export interface RefreshedToken {
  readonly access_token: string
  readonly token_type: string
  readonly expires_in?: number | undefined
  readonly refresh_token?: string | undefined
  readonly scope?: string | undefined
  readonly [field: string]: unknown
}

/**
 * One refresh-token grant at a provider (one HTTP exchange, no retries, no
 * deadline: the coordinator adds both). Failures are classified in
 * `RefreshFailure.reason`: `Transient`, `Rejected` or `Invalid`. Tests swap
 * the Layer for one that fails on command.
 */
export interface TokenRefresherShape {
  readonly refresh: (
    provider: OAuthProvider,
    refreshToken: string
  ) => Effect.Effect<RefreshedToken, RefreshFailure>
}

export class TokenRefresher extends Context.Tag("credproxy/TokenRefresher")<
  TokenRefresher,
  TokenRefresherShape
>() {}
