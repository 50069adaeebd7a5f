import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import { errorCode, StoreFailure, type StoreOperation } from "../errors/errors.js"
import * as KeyedLock from "../lib/keyed-lock.js"
import { DEFAULT_BUCKET, isValidName } from "../protocol/names.js"
import { fieldIssueOf } from "../protocol/parse-issue.js"
import { OAuthToken } from "../protocol/token.js"
import { KeyStorage, type KeyStorageShape } from "../services/KeyStorage.js"
import { LISTING_LIMIT, type TokenKey, TokenStore, type TokenStoreShape } from "../services/TokenStore.js"
import { STORE_REVALIDATE_MS } from "./store-cache/store-cache.js"

/**
 * A host program's own credential stores, Promise-based (PROTOCOL.md §15),
 * served by credproxy instead of its file store. `bucket` is `undefined` for
 * the default bucket.
 */
export interface HostTokenStore {
  getToken(provider: string, bucket?: string): Promise<OAuthToken | null>
  saveToken(provider: string, token: OAuthToken, bucket?: string): Promise<void>
  removeToken(provider: string, bucket?: string): Promise<void>
  listProviders(): Promise<Array<string>>
  listBuckets(provider: string): Promise<Array<string>>
  getBucketStats?(
    provider: string,
    bucket: string
  ): Promise<{ readonly requestCount: number; readonly percentage: number } | null>
}

export interface HostKeyStorage {
  getKey(name: string): Promise<string | null>
  listKeys(): Promise<Array<string>>
  hasKey(name: string): Promise<boolean>
}

/**
 * One call into the host's store. Whatever it throws (or rejects with)
 * becomes a `StoreFailure` that keeps only an error code, never the host's
 * message; a call that hangs is cut by the store deadline (`StoreDeadline`).
 */
const call = <A>(operation: StoreOperation, f: () => Promise<A> | A): Effect.Effect<A, StoreFailure> =>
  Effect.tryPromise({
    try: async () => f(),
    catch: (cause) => {
      const code = errorCode(cause)
      return new StoreFailure({ operation, reason: "HostStore", ...(code === undefined ? {} : { code }) })
    }
  })

/** The host's answer checked like a token file: a token, or `undefined`; anything else is `Corrupt`. */
const decodeToken = Schema.decodeUnknownEither(OAuthToken)
const checkedToken = (value: unknown): Effect.Effect<OAuthToken | undefined, StoreFailure> => {
  if (value === null || value === undefined) return Effect.succeed(undefined)
  return Either.match(decodeToken(value), {
    onLeft: (error) =>
      Effect.fail(new StoreFailure({ operation: "get", reason: "Corrupt", issue: fieldIssueOf(error) })),
    onRight: (token) => Effect.succeed(token)
  })
}

/** The names of a host's listing that could be names at all (§8), at most LISTING_LIMIT, sorted. */
const checkedNames = (value: unknown): Array<string> =>
  (Array.isArray(value) ? value : [])
    .filter((name): name is string => typeof name === "string" && isValidName(name))
    .slice(0, LISTING_LIMIT)
    .sort()

const hostBucket = (key: TokenKey): string | undefined =>
  key.bucket === DEFAULT_BUCKET ? undefined : key.bucket

/**
 * What was read from a host store in the last STORE_REVALIDATE_MS, so the
 * hot path can answer without a call into it (a host program's own writes
 * show within 1 s, as another process's do with the file store; credproxy's
 * own at once). At most `maxEntries` are kept, the oldest dropped first.
 */
const makeMemo = <A>(nowMs: () => number, maxEntries = 10_000) => {
  const entries = new Map<string, { readonly at: number; readonly known: Option.Option<A | undefined> }>()
  return {
    cached: (id: string): Option.Option<A | undefined> => {
      const entry = entries.get(id)
      if (entry === undefined) return Option.none()
      const age = nowMs() - entry.at
      return age >= 0 && age < STORE_REVALIDATE_MS ? entry.known : Option.none()
    },
    remember: (id: string, value: A | undefined): void => {
      entries.delete(id)
      if (entries.size >= maxEntries) {
        const oldest = entries.keys().next()
        if (oldest.done !== true) entries.delete(oldest.value)
      }
      entries.set(id, { at: nowMs(), known: Option.some(value) })
    }
  }
}

/** The host's token store as the `TokenStore` service, with credproxy's in-process per-key lock. */
export const makeTokenStore = (host: HostTokenStore): Effect.Effect<TokenStoreShape, never, Scope.Scope> =>
  Effect.gen(function* () {
    const clock = yield* Effect.clock
    const locks = yield* KeyedLock.make
    const memo = makeMemo<OAuthToken>(() => clock.unsafeCurrentTimeMillis())
    const read = (key: TokenKey) =>
      call("get", () => host.getToken(key.provider, hostBucket(key))).pipe(
        Effect.flatMap(checkedToken),
        Effect.tap((token) => Effect.sync(() => memo.remember(KeyedLock.tokenKeyId(key), token)))
      )
    const getBucketStats = host.getBucketStats?.bind(host)
    const listBuckets = (provider: string) =>
      Effect.map(
        call("list", () => host.listBuckets(provider)),
        checkedNames
      )
    return TokenStore.of({
      cached: (key) => memo.cached(KeyedLock.tokenKeyId(key)),
      get: (key) =>
        Effect.suspend(() => {
          const known = memo.cached(KeyedLock.tokenKeyId(key))
          return Option.isSome(known) ? Effect.succeed(known.value) : read(key)
        }),
      getLatest: read,
      save: (key, token) =>
        Effect.zipRight(
          call("save", () => host.saveToken(key.provider, token, hostBucket(key))),
          Effect.sync(() => memo.remember(KeyedLock.tokenKeyId(key), token))
        ),
      remove: (key) =>
        Effect.zipRight(
          call("remove", () => host.removeToken(key.provider, hostBucket(key))),
          Effect.sync(() => memo.remember(KeyedLock.tokenKeyId(key), undefined))
        ),
      listProviders: (filter) =>
        Effect.gen(function* () {
          const all = checkedNames(yield* call("list", () => host.listProviders()))
          const candidates = filter === undefined ? all : all.filter((provider) => filter.provider(provider))
          if (filter === undefined) return candidates
          // A provider the host lists without any bucket holds its token in the default one.
          const shown = yield* Effect.forEach(candidates, (provider) =>
            Effect.map(listBuckets(provider), (buckets) =>
              (buckets.length === 0 ? [DEFAULT_BUCKET] : buckets).some((bucket) =>
                filter.token(provider, bucket)
              )
            )
          )
          return candidates.filter((_, i) => shown[i])
        }),
      listBuckets,
      ...(getBucketStats === undefined
        ? {}
        : {
            bucketStats: (key: TokenKey) =>
              Effect.map(
                call("get", () => getBucketStats(key.provider, key.bucket)),
                (stats) =>
                  stats === null || stats === undefined
                    ? undefined
                    : {
                        requestCount: Number(stats.requestCount) || 0,
                        percentage: Number(stats.percentage) || 0
                      }
              )
          }),
      lock: (key) => locks.acquire(KeyedLock.tokenKeyId(key))
    })
  })

/** The host's key storage as the `KeyStorage` service; it is read-only (the socket never writes keys). */
export const makeKeyStorage = (host: HostKeyStorage): Effect.Effect<KeyStorageShape> =>
  Effect.map(Effect.clock, (clock) => {
    const memo = makeMemo<string>(() => clock.unsafeCurrentTimeMillis())
    const read = (name: string) =>
      call("get", () => host.getKey(name)).pipe(
        Effect.map((value) => (typeof value === "string" ? value : undefined)),
        Effect.tap((value) => Effect.sync(() => memo.remember(name, value)))
      )
    const readOnly = (operation: StoreOperation) =>
      Effect.fail(new StoreFailure({ operation, reason: "HostStore", code: "READ_ONLY" }))
    return KeyStorage.of({
      cached: memo.cached,
      get: (name) =>
        Effect.suspend(() => {
          const known = memo.cached(name)
          return Option.isSome(known) ? Effect.succeed(known.value) : read(name)
        }),
      has: (name) =>
        Effect.map(
          call("get", () => host.hasKey(name)),
          (exists) => exists === true
        ),
      list: (include) =>
        Effect.map(
          call("list", () => host.listKeys()),
          (names) => checkedNames(names).filter((name) => include === undefined || include(name))
        ),
      set: () => readOnly("set"),
      remove: () => readOnly("remove")
    })
  })

/** The stores of a host program as Layers; either may be left to credproxy's own (`fallback`). */
export const layer = <E1, E2>(
  host: {
    readonly tokenStore?: HostTokenStore | undefined
    readonly keyStorage?: HostKeyStorage | undefined
  },
  fallback: { readonly tokens: Layer.Layer<TokenStore, E1>; readonly keys: Layer.Layer<KeyStorage, E2> }
): Layer.Layer<TokenStore | KeyStorage, E1 | E2> =>
  Layer.merge(
    host.tokenStore === undefined
      ? fallback.tokens
      : Layer.scoped(TokenStore, makeTokenStore(host.tokenStore)),
    host.keyStorage === undefined ? fallback.keys : Layer.effect(KeyStorage, makeKeyStorage(host.keyStorage))
  )
