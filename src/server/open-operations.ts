import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import { Forbidden, InvalidRequest, NotFound, type ProxyError, Unauthorized } from "../errors/errors.js"
import { MAX_STORED_TOKEN_BYTES } from "../protocol/limits.js"
import { DEFAULT_BUCKET } from "../protocol/names.js"
import { mergeTokens, sanitizedTokenJson, storedTokenBytes, withoutRefreshToken } from "../protocol/token.js"
import type { TokenFilter, TokenKey } from "../services/TokenStore.js"
import { fromStore, type Handled, ready, refuse, run } from "./handled.js"
import { loginSpecs } from "./login-operations.js"
import { json, type OperationDeps, type OperationTable, orEmpty, tokenKey, withToken } from "./operations.js"

const TOKEN_NOT_FOUND = new NotFound({ what: "token" })
const KEY_NOT_FOUND = new NotFound({ what: "api key" })
const TOKEN_TOO_LARGE = new InvalidRequest({ reason: "TokenTooLarge" })
const STORE_LIMIT = new Forbidden({ reason: "StoreLimit" })

/**
 * The operations of PROTOCOL.md §6 as an ordinary connection sees them: the
 * access policy decides (`UNAUTHORIZED`), names reveal what is stored.
 */
export const openSpecs = (deps: OperationDeps): OperationTable => {
  const { tokens, keys, policy, refresh, renewal, quota } = deps
  const allowsToken = (p: { readonly provider: string; readonly bucket?: string | undefined }) =>
    policy.allowsToken(p.provider, p.bucket ?? DEFAULT_BUCKET)

  /**
   * Holds the key's lock (the one `refresh_token` takes) while `work` runs.
   * A request cancelled while it waits for the lock stops there; the write
   * itself, once begun, is never cut short.
   */
  const locked = (key: TokenKey, work: Effect.Effect<void, ProxyError>) =>
    run(Effect.as(Effect.scoped(Effect.zipRight(tokens.lock(key), work)), "{}"))

  /** A new token takes one of the run's places (§22), given back if its save fails. */
  const create = (save: Effect.Effect<void, ProxyError>): Effect.Effect<void, ProxyError> => {
    if (!quota.take()) return Effect.fail(STORE_LIMIT)
    return Effect.tapError(save, () => Effect.sync(quota.giveBack))
  }

  /** What the policy lets a listing show: a provider is listed when an allowed bucket of it holds a token (§14). */
  const listed: TokenFilter = { provider: policy.allowsProvider, token: policy.allowsToken }

  /** Usage figures of a stored token: the host store's own when it keeps any, else zeros (§6). */
  const bucketStats = (key: TokenKey): Handled => {
    const zero = (): Handled =>
      withToken(tokens, key, TOKEN_NOT_FOUND, () =>
        ready(json({ bucket: key.bucket, requestCount: 0, percentage: 0 }))
      )
    const fromHost = tokens.bucketStats
    if (fromHost === undefined) return zero()
    return run(
      Effect.flatMap(fromHost(key), (stats) =>
        stats === undefined
          ? Effect.flatMap(tokens.get(key), (token) =>
              token === undefined
                ? Effect.fail(TOKEN_NOT_FOUND)
                : json({ bucket: key.bucket, requestCount: 0, percentage: 0 })
            )
          : json({ bucket: key.bucket, requestCount: stats.requestCount, percentage: stats.percentage })
      )
    )
  }

  const specs: OperationTable["specs"] = {
    get_token: {
      authorize: allowsToken,
      run: (p) => {
        const key = tokenKey(p)
        return withToken(tokens, key, TOKEN_NOT_FOUND, (token) => {
          renewal.watch(key, token)
          return ready(Either.right(sanitizedTokenJson(token)))
        })
      }
    },
    save_token: {
      authorize: allowsToken,
      run: (p) => {
        const key = tokenKey(p)
        const incoming = withoutRefreshToken(p.token)
        if (storedTokenBytes(incoming) > MAX_STORED_TOKEN_BYTES) return refuse(TOKEN_TOO_LARGE)
        return locked(
          key,
          Effect.flatMap(tokens.getLatest(key), (stored): Effect.Effect<void, ProxyError> => {
            const merged = mergeTokens(stored, incoming)
            if (storedTokenBytes(merged) > MAX_STORED_TOKEN_BYTES) return Effect.fail(TOKEN_TOO_LARGE)
            const save = Effect.uninterruptible(tokens.save(key, merged))
            return stored === undefined ? create(save) : save
          })
        )
      }
    },
    remove_token: {
      authorize: allowsToken,
      run: (p) => {
        const key = tokenKey(p)
        return locked(key, Effect.uninterruptible(tokens.remove(key)))
      }
    },
    list_providers: {
      authorize: () => true,
      run: () =>
        run(Effect.map(orEmpty(tokens.listProviders(listed)), (providers) => JSON.stringify({ providers })))
    },
    list_buckets: {
      authorize: (p) => policy.allowsProvider(p.provider),
      run: (p) =>
        run(
          Effect.map(orEmpty(tokens.listBuckets(p.provider)), (buckets) =>
            JSON.stringify({ buckets: buckets.filter((bucket) => policy.allowsToken(p.provider, bucket)) })
          )
        )
    },
    get_bucket_stats: {
      authorize: allowsToken,
      run: (p) => bucketStats(tokenKey(p))
    },
    get_api_key: {
      authorize: (p) => policy.allowsKey(p.name),
      run: (p) =>
        fromStore(
          keys.cached(p.name),
          () => keys.get(p.name),
          (value) =>
            value === undefined
              ? refuse(KEY_NOT_FOUND)
              : ready(Either.right(`{"key":${JSON.stringify(value)}}`))
        )
    },
    has_api_key: {
      authorize: (p) => policy.allowsKey(p.name),
      run: (p) =>
        fromStore(
          Option.map(keys.cached(p.name), (value) => value !== undefined),
          () => keys.has(p.name),
          (exists) => ready(Either.right(exists ? '{"exists":true}' : '{"exists":false}'))
        )
    },
    list_api_keys: {
      authorize: () => true,
      run: () =>
        run(Effect.map(orEmpty(keys.list(policy.allowsKey)), (names) => JSON.stringify({ keys: names })))
    },
    refresh_token: {
      authorize: allowsToken,
      run: (p) => run(Effect.map(refresh.refresh(tokenKey(p)), sanitizedTokenJson))
    },
    ...loginSpecs(deps)
  }

  return { specs, denied: refuse(new Unauthorized({ reason: "Policy" })) }
}
