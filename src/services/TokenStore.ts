import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import type { StoreError } from "../errors/errors.js"
import type { OAuthToken } from "../protocol/token.js"

/** Where a token lives: one provider, one bucket. */
export interface TokenKey {
  readonly provider: string
  readonly bucket: string
}

export const tokenKeyString = (key: TokenKey): string => `${key.provider}:${key.bucket}`

/** Usage figures of one token, as a host program's store may keep them. */
export interface BucketStats {
  readonly requestCount: number
  readonly percentage: number
}

/** Which providers and tokens a listing may show (the access policy's view). */
export interface TokenFilter {
  readonly provider: (provider: string) => boolean
  readonly token: (provider: string, bucket: string) => boolean
}

/** A listing reads at most this many directory entries (§22), so no listing can stall the others. */
export const LISTING_LIMIT = 1_000

/** A store refuses to read a stored value (a token's JSON, a key) larger than this: a token is at most 16 KiB, and an answer cannot exceed 64 KiB anyway. */
export const MAX_VALUE_BYTES = 64 * 1024

/**
 * Holds full OAuth tokens (refresh tokens included). A store may keep what it
 * read in memory, but must show another process's writes within 1 s and its
 * own at once.
 */
export interface TokenStoreShape {
  /**
   * What the store already holds for `key` and still trusts, read
   * synchronously without I/O: `Some(token)`, `Some(undefined)` when it knows
   * nothing is stored, `None` when only `get` can tell. The server answers
   * from this without starting any work (see docs/ARCHITECTURE.md).
   */
  readonly cached: (key: TokenKey) => Option.Option<OAuthToken | undefined>
  /** The stored token, possibly from memory that is at most 1 s behind other processes. */
  readonly get: (key: TokenKey) => Effect.Effect<OAuthToken | undefined, StoreError>
  /** The stored token as it is now on the backing store; use under `lock`. */
  readonly getLatest: (key: TokenKey) => Effect.Effect<OAuthToken | undefined, StoreError>
  readonly save: (key: TokenKey, token: OAuthToken) => Effect.Effect<void, StoreError>
  /** Deletes the token; succeeds when nothing was stored. */
  readonly remove: (key: TokenKey) => Effect.Effect<void, StoreError>
  /**
   * Providers with at least one stored token that `filter` lets through
   * (all without one). The filter is applied before anything it excludes is
   * read, and a listing reads at most LISTING_LIMIT entries (§22).
   */
  readonly listProviders: (filter?: TokenFilter) => Effect.Effect<ReadonlyArray<string>, StoreError>
  /** Buckets of a provider that hold a token (at most LISTING_LIMIT read); `[]` for an unknown provider. */
  readonly listBuckets: (provider: string) => Effect.Effect<ReadonlyArray<string>, StoreError>
  /**
   * Usage figures a host program keeps for a token (`get_bucket_stats`),
   * when the store has any; `undefined` when it keeps none for this one.
   */
  readonly bucketStats?: (key: TokenKey) => Effect.Effect<BucketStats | undefined, StoreError>
  /** The provider:bucket lock, held until the scope closes; exclusive within this process (and across processes where the store can). */
  readonly lock: (key: TokenKey) => Effect.Effect<void, StoreError, Scope.Scope>
}

export class TokenStore extends Context.Tag("credproxy/TokenStore")<TokenStore, TokenStoreShape>() {}
