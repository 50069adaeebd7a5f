import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import type * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import {
  InvalidRequest,
  NotFound,
  OperationUnavailable,
  type ProxyError,
  type StoreError,
  StoreTimeout,
  Unauthorized
} from "../errors/errors.js"
import { DEFAULT_BUCKET } from "../protocol/names.js"
import { type Operation, type PayloadOf, requestSchema } from "../protocol/operations.js"
import { describeParseIssue } from "../protocol/parse-issue.js"
import { mergeTokens, sanitizedTokenJson, withoutRefreshToken } from "../protocol/token.js"
import type { AccessPolicyShape } from "../services/AccessPolicy.js"
import type { KeyStorageShape } from "../services/KeyStorage.js"
import type { RefreshCoordinatorShape } from "../services/RefreshCoordinator.js"
import type { TokenRenewalShape } from "../services/TokenRenewal.js"
import type { TokenKey, TokenStoreShape } from "../services/TokenStore.js"
import { flatMapInline, mapInline, orElseSucceedInline } from "./inline.js"

/** Names a request touches, for the audit line (never a secret). */
export interface AuditFields {
  readonly provider?: string
  readonly bucket?: string
  readonly key?: string
}

/** A decoded, authorized request, ready to run: its result is the `data` object as JSON. */
export interface PreparedRequest {
  readonly audit: AuditFields
  readonly result: Effect.Effect<string, ProxyError>
}

/**
 * One handler per operation (PROTOCOL.md §6), chosen by one lookup. Each
 * operation decodes its payload with a precompiled schema decoder, is checked
 * against the access policy, then runs; nothing touches a store before both
 * checks pass. Results that are already complete come back as an `Exit`.
 */
export interface Operations {
  /** Decodes, authorizes and starts one request frame (a parsed JSON object with a usable id). */
  readonly prepare: (op: Operation, request: Readonly<Record<string, unknown>>) => PreparedRequest
}

export interface OperationDeps {
  readonly tokens: TokenStoreShape
  readonly keys: KeyStorageShape
  readonly policy: AccessPolicyShape
  /** `refresh_token` (PROTOCOL.md §6): the coordinator applies its own deadlines. */
  readonly refresh: RefreshCoordinatorShape
  /** Proactive renewal, told about every token `get_token` answers. */
  readonly renewal: TokenRenewalShape
  readonly storeCallTimeoutMs: number
}

interface OperationSpec<P> {
  /** Decodes the whole request frame (envelope and payload). */
  readonly decode: (request: unknown) => Either.Either<{ readonly payload: P }, ParseResult.ParseError>
  readonly audit: (payload: P) => AuditFields
  /** False when the access policy forbids the request. */
  readonly authorize: (payload: P) => boolean
  readonly run: (payload: P) => Effect.Effect<string, ProxyError>
}

const EMPTY_OBJECT_JSON = "{}"
const denied = Exit.fail(new Unauthorized({ reason: "not allowed by the access policy" }))

const tokenKey = (payload: {
  readonly provider: string
  readonly bucket?: string | undefined
}): TokenKey => ({
  provider: payload.provider,
  bucket: payload.bucket ?? DEFAULT_BUCKET
})

const tokenAudit = (payload: {
  readonly provider: string
  readonly bucket?: string | undefined
}): AuditFields => ({
  provider: payload.provider,
  bucket: payload.bucket ?? DEFAULT_BUCKET
})

export const makeOperations = (deps: OperationDeps): Operations => {
  const { tokens, keys, policy, refresh, renewal } = deps
  const timeout = Duration.millis(deps.storeCallTimeoutMs)

  /** The host-side deadline of one store call (§10); completed results stay inline. */
  const storeCall =
    (operation: string) =>
    <A, R>(call: Effect.Effect<A, StoreError, R>): Effect.Effect<A, StoreError, R> =>
      Exit.isExit(call)
        ? call
        : Effect.timeoutFail(call, { duration: timeout, onTimeout: () => new StoreTimeout({ operation }) })

  const getToken = (key: TokenKey) =>
    flatMapInline(storeCall("get token")(tokens.get(key)), (token) =>
      token === undefined ? Exit.fail(new NotFound({ what: "token" })) : Exit.succeed(token)
    )

  /** `{"key":...}` around one string serialization. */
  const keyJson = (value: string): string => `{"key":${JSON.stringify(value)}}`

  const spec = <Op extends Operation>(
    op: Op,
    handler: Omit<OperationSpec<PayloadOf<Op>>, "decode">
  ): OperationSpec<PayloadOf<Op>> => ({
    decode: Schema.decodeUnknownEither(requestSchema(op)),
    ...handler
  })

  const notYet = <Op extends Operation>(op: Op) =>
    spec(op, {
      audit: () => ({}),
      authorize: () => true,
      run: () => Exit.fail(new OperationUnavailable({ op }))
    })

  const specs: { readonly [Op in Operation]: OperationSpec<PayloadOf<Op>> } = {
    get_token: spec("get_token", {
      audit: tokenAudit,
      authorize: (p) => policy.allowsToken(p.provider, p.bucket ?? DEFAULT_BUCKET),
      run: (p) => {
        const key = tokenKey(p)
        return mapInline(getToken(key), (token) => {
          renewal.watch(key, token)
          return sanitizedTokenJson(token)
        })
      }
    }),

    save_token: spec("save_token", {
      audit: tokenAudit,
      authorize: (p) => policy.allowsToken(p.provider, p.bucket ?? DEFAULT_BUCKET),
      run: (p) => {
        const key = tokenKey(p)
        const incoming = withoutRefreshToken(p.token)
        return Effect.scoped(
          Effect.gen(function* () {
            yield* storeCall("lock token")(tokens.lock(key))
            const stored = yield* storeCall("read token")(tokens.getLatest(key))
            yield* storeCall("save token")(tokens.save(key, mergeTokens(stored, incoming)))
            return EMPTY_OBJECT_JSON
          })
        )
      }
    }),

    remove_token: spec("remove_token", {
      audit: tokenAudit,
      authorize: (p) => policy.allowsToken(p.provider, p.bucket ?? DEFAULT_BUCKET),
      run: (p) => {
        const key = tokenKey(p)
        return Effect.scoped(
          Effect.zipRight(
            storeCall("lock token")(tokens.lock(key)),
            Effect.as(storeCall("remove token")(tokens.remove(key)), EMPTY_OBJECT_JSON)
          )
        )
      }
    }),

    list_providers: spec("list_providers", {
      audit: () => ({}),
      authorize: () => true,
      run: () =>
        orElseSucceedInline(
          flatMapInline(storeCall("list providers")(tokens.listProviders), (providers) =>
            Effect.filter(providers, (provider) =>
              policy.allowsEveryBucket(provider)
                ? Effect.succeed(true)
                : policy.allowsProvider(provider)
                  ? Effect.map(storeCall("list buckets")(tokens.listBuckets(provider)), (buckets) =>
                      buckets.some((bucket) => policy.allowsToken(provider, bucket))
                    )
                  : Effect.succeed(false)
            )
          ),
          []
        ).pipe((listed) => mapInline(listed, (providers) => JSON.stringify({ providers })))
    }),

    list_buckets: spec("list_buckets", {
      audit: (p) => ({ provider: p.provider }),
      authorize: (p) => policy.allowsProvider(p.provider),
      run: (p) =>
        mapInline(
          orElseSucceedInline(storeCall("list buckets")(tokens.listBuckets(p.provider)), []),
          (buckets) => JSON.stringify({ buckets: buckets.filter((b) => policy.allowsToken(p.provider, b)) })
        )
    }),

    get_bucket_stats: spec("get_bucket_stats", {
      audit: tokenAudit,
      authorize: (p) => policy.allowsToken(p.provider, p.bucket ?? DEFAULT_BUCKET),
      run: (p) => {
        const key = tokenKey(p)
        return mapInline(getToken(key), () =>
          JSON.stringify({ bucket: key.bucket, requestCount: 0, percentage: 0 })
        )
      }
    }),

    get_api_key: spec("get_api_key", {
      audit: (p) => ({ key: p.name }),
      authorize: (p) => policy.allowsKey(p.name),
      run: (p) =>
        flatMapInline(storeCall("get api key")(keys.get(p.name)), (value) =>
          value === undefined ? Exit.fail(new NotFound({ what: "api key" })) : Exit.succeed(keyJson(value))
        )
    }),

    has_api_key: spec("has_api_key", {
      audit: (p) => ({ key: p.name }),
      authorize: (p) => policy.allowsKey(p.name),
      run: (p) =>
        mapInline(storeCall("check api key")(keys.has(p.name)), (exists) =>
          exists ? '{"exists":true}' : '{"exists":false}'
        )
    }),

    list_api_keys: spec("list_api_keys", {
      audit: () => ({}),
      authorize: () => true,
      run: () =>
        mapInline(orElseSucceedInline(storeCall("list api keys")(keys.list), []), (names) =>
          JSON.stringify({ keys: names.filter(policy.allowsKey) })
        )
    }),

    refresh_token: spec("refresh_token", {
      audit: tokenAudit,
      authorize: (p) => policy.allowsToken(p.provider, p.bucket ?? DEFAULT_BUCKET),
      run: (p) => Effect.map(refresh.refresh(tokenKey(p)), sanitizedTokenJson)
    }),
    oauth_initiate: notYet("oauth_initiate"),
    oauth_exchange: notYet("oauth_exchange"),
    oauth_poll: notYet("oauth_poll"),
    oauth_cancel: notYet("oauth_cancel")
  }

  return {
    prepare: (op, request) => {
      const operation = specs[op] as OperationSpec<unknown>
      const decoded = operation.decode(request.payload === undefined ? { ...request, payload: {} } : request)
      if (Either.isLeft(decoded)) {
        return {
          audit: {},
          result: Exit.fail(new InvalidRequest({ reason: describeParseIssue(decoded.left.issue) }))
        }
      }
      const payload = decoded.right.payload
      const audit = operation.audit(payload)
      if (!operation.authorize(payload)) return { audit, result: denied }
      return { audit, result: operation.run(payload) }
    }
  }
}
