import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type { StoreError } from "../errors/errors.js"
import type { OAuthToken } from "../protocol/token.js"

/** Where a token lives: one provider, one bucket. */
export interface TokenKey {
  readonly provider: string
  readonly bucket: string
}

export const tokenKeyString = (key: TokenKey): string => `${key.provider}:${key.bucket}`

/**
 * Holds full OAuth tokens (refresh tokens included). Implementations may
 * answer `get` from a cache, but must show another process's writes within
 * 1 s and their own at once; a completed lookup may be returned as an `Exit`
 * so the server can answer it without forking.
 */
export interface TokenStoreShape {
  /** The stored token, possibly from a cache that is at most 1 s behind other processes. */
  readonly get: (key: TokenKey) => Effect.Effect<OAuthToken | undefined, StoreError>
  /** The stored token as it is now on the backing store; use under `lock`. */
  readonly getLatest: (key: TokenKey) => Effect.Effect<OAuthToken | undefined, StoreError>
  readonly save: (key: TokenKey, token: OAuthToken) => Effect.Effect<void, StoreError>
  /** Deletes the token; succeeds when nothing was stored. */
  readonly remove: (key: TokenKey) => Effect.Effect<void, StoreError>
  /** Providers with at least one stored token. */
  readonly listProviders: Effect.Effect<ReadonlyArray<string>, StoreError>
  /** Buckets of a provider that hold a token; `[]` for an unknown provider. */
  readonly listBuckets: (provider: string) => Effect.Effect<ReadonlyArray<string>, StoreError>
  /** The provider:bucket lock, held until the scope closes; exclusive within this process and across processes. */
  readonly lock: (key: TokenKey) => Effect.Effect<void, StoreError, Scope.Scope>
}

export class TokenStore extends Context.Tag("credproxy/TokenStore")<TokenStore, TokenStoreShape>() {}
