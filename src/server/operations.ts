import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import {
  Forbidden,
  InvalidRequest,
  NotFound,
  OperationUnavailable,
  type ProxyError,
  Unauthorized
} from "../errors/errors.js"
import { MAX_STORED_TOKEN_BYTES } from "../protocol/limits.js"
import { DEFAULT_BUCKET } from "../protocol/names.js"
import type { DecodedRequest, Operation, PayloadOf } from "../protocol/operations.js"
import {
  mergeTokens,
  type OAuthToken,
  sanitizedTokenJson,
  storedTokenBytes,
  withoutRefreshToken
} from "../protocol/token.js"
import type { AccessPolicyShape } from "../services/AccessPolicy.js"
import type { KeyStorageShape } from "../services/KeyStorage.js"
import type { RefreshCoordinatorShape } from "../services/RefreshCoordinator.js"
import type { TokenRenewalShape } from "../services/TokenRenewal.js"
import type { TokenFilter, TokenKey, TokenStoreShape } from "../services/TokenStore.js"
import { fromStore, type Handled, refuse, run } from "./handled.js"

export interface OperationDeps {
  /** Tokens `save_token` may create in this run (§22). */
  readonly maxNewTokens: number
  readonly tokens: TokenStoreShape
  readonly keys: KeyStorageShape
  readonly policy: AccessPolicyShape
  /** `refresh_token` (PROTOCOL.md §6). */
  readonly refresh: RefreshCoordinatorShape
  /** Proactive renewal, told about every token `get_token` answers. */
  readonly renewal: TokenRenewalShape
}

/** One operation: whether the access policy allows the request, then what answers it. */
interface OperationSpec<P> {
  readonly authorize: (payload: P) => boolean
  readonly run: (payload: P) => Handled
}

type Specs = { readonly [Op in Operation]: OperationSpec<PayloadOf<Op>> }

const DENIED = refuse(new Unauthorized({ reason: "Policy" }))
const TOKEN_TOO_LARGE = new InvalidRequest({ reason: "TokenTooLarge" })
const STORE_LIMIT = new Forbidden({ reason: "StoreLimit" })
const TOKEN_NOT_FOUND = Either.left(new NotFound({ what: "token" }))
const KEY_NOT_FOUND = Either.left(new NotFound({ what: "api key" }))

const tokenKey = (payload: {
  readonly provider: string
  readonly bucket?: string | undefined
}): TokenKey => ({
  provider: payload.provider,
  bucket: payload.bucket ?? DEFAULT_BUCKET
})

const json = (value: unknown): Either.Either<string, ProxyError> => Either.right(JSON.stringify(value))

/** A list operation never fails on a store error (§6): an empty list instead. */
const orEmpty = <A>(list: Effect.Effect<ReadonlyArray<A>, ProxyError>) => Effect.orElseSucceed(list, () => [])

/**
 * One handler per operation (PROTOCOL.md §6), chosen by one lookup: the
 * access policy first, then the handler; a refused request touches no store.
 * Handlers answer from what the stores already hold where they can
 * (`fromStore`) and otherwise describe the work; they never run it.
 */
export const makeOperations = (deps: OperationDeps): ((request: DecodedRequest) => Handled) => {
  const { tokens, keys, policy, refresh, renewal } = deps
  /** Tokens created through the socket in this run; a failed save gives its place back. */
  let created = 0
  const allowsToken = (p: { readonly provider: string; readonly bucket?: string | undefined }) =>
    policy.allowsToken(p.provider, p.bucket ?? DEFAULT_BUCKET)

  /** The stored token of `key`, answered by `answer`, or NOT_FOUND. */
  const withToken = (key: TokenKey, answer: (token: OAuthToken) => Either.Either<string, ProxyError>) =>
    fromStore(
      tokens.cached(key),
      () => tokens.get(key),
      (token) => (token === undefined ? TOKEN_NOT_FOUND : answer(token))
    )

  /** Holds the key's lock (the one `refresh_token` takes) while `work` runs. */
  const locked = (key: TokenKey, work: Effect.Effect<void, ProxyError>) =>
    run(Effect.as(Effect.scoped(Effect.zipRight(tokens.lock(key), work)), "{}"))

  /** What the policy lets a listing show: a provider is listed when an allowed bucket of it holds a token (§14). */
  const listed: TokenFilter = { provider: policy.allowsProvider, token: policy.allowsToken }

  const notAvailable = (op: Operation): OperationSpec<unknown> => ({
    authorize: () => true,
    run: () => refuse(new OperationUnavailable({ op }))
  })

  const specs: Specs = {
    get_token: {
      authorize: allowsToken,
      run: (p) => {
        const key = tokenKey(p)
        return withToken(key, (token) => {
          renewal.watch(key, token)
          return Either.right(sanitizedTokenJson(token))
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
            if (stored !== undefined) return tokens.save(key, merged)
            // A new token: it takes one of the run's places, given back if the save fails.
            if (created >= deps.maxNewTokens) return Effect.fail(STORE_LIMIT)
            created++
            return Effect.tapError(tokens.save(key, merged), () =>
              Effect.sync(() => {
                created--
              })
            )
          })
        )
      }
    },
    remove_token: {
      authorize: allowsToken,
      run: (p) => {
        const key = tokenKey(p)
        return locked(key, tokens.remove(key))
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
      run: (p) => {
        const key = tokenKey(p)
        return withToken(key, () => json({ bucket: key.bucket, requestCount: 0, percentage: 0 }))
      }
    },
    get_api_key: {
      authorize: (p) => policy.allowsKey(p.name),
      run: (p) =>
        fromStore(
          keys.cached(p.name),
          () => keys.get(p.name),
          (value) => (value === undefined ? KEY_NOT_FOUND : Either.right(`{"key":${JSON.stringify(value)}}`))
        )
    },
    has_api_key: {
      authorize: (p) => policy.allowsKey(p.name),
      run: (p) =>
        fromStore(
          Option.map(keys.cached(p.name), (value) => value !== undefined),
          () => keys.has(p.name),
          (exists) => Either.right(exists ? '{"exists":true}' : '{"exists":false}')
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
    oauth_initiate: notAvailable("oauth_initiate"),
    oauth_exchange: notAvailable("oauth_exchange"),
    oauth_poll: notAvailable("oauth_poll"),
    oauth_cancel: notAvailable("oauth_cancel")
  }

  return (request) => {
    // The request's op picks its spec; TypeScript cannot relate the two through the table, hence the cast.
    const spec = specs[request.op] as OperationSpec<unknown>
    return spec.authorize(request.payload) ? spec.run(request.payload) : DENIED
  }
}
