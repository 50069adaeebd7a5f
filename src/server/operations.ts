import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import type { ProxyError } from "../errors/errors.js"
import { DEFAULT_BUCKET } from "../protocol/names.js"
import type { DecodedRequest, Operation, PayloadOf } from "../protocol/operations.js"
import type { OAuthToken } from "../protocol/token.js"
import type { AccessPolicyShape } from "../services/AccessPolicy.js"
import type { Asker, ConfirmationsShape } from "../services/Confirmations.js"
import type { KeyStorageShape } from "../services/KeyStorage.js"
import type { LoginSessionsShape } from "../services/LoginSessions.js"
import type { RefreshCoordinatorShape } from "../services/RefreshCoordinator.js"
import type { TokenQuotaShape } from "../services/TokenQuota.js"
import type { TokenRenewalShape } from "../services/TokenRenewal.js"
import type { TokenKey, TokenStoreShape } from "../services/TokenStore.js"
import { fromStore, type Handled, refuse, run, toEffect } from "./handled.js"
import { openSpecs } from "./open-operations.js"
import { restrictedSpecs } from "./restricted-operations.js"

/** What the handlers work on. */
export interface OperationDeps {
  readonly tokens: TokenStoreShape
  readonly keys: KeyStorageShape
  readonly policy: AccessPolicyShape
  /** `refresh_token` (PROTOCOL.md §6). */
  readonly refresh: RefreshCoordinatorShape
  /** Proactive renewal, told about every token `get_token` answers. */
  readonly renewal: TokenRenewalShape
  /** Confirm on first use (`serve --confirm`); off, it is never asked. */
  readonly confirm: ConfirmationsShape
  /** Tokens `save_token` (and a login) may still create in this run (§22). */
  readonly quota: TokenQuotaShape
  /** The `oauth_*` operations (§17). */
  readonly logins: LoginSessionsShape
  /** The wall clock in milliseconds (the Effect `Clock`'s). */
  readonly nowMs: () => number
}

/** The operations a handler answers; `cancel` is the connection's own (it acts on its requests). */
export type HandledOperation = Exclude<Operation, "cancel">

/**
 * One operation: whether the access policy allows the request, then what
 * answers it. `identity` is the connection's (`Asker.identity`): only
 * login sessions look at it.
 */
export interface OperationSpec<P> {
  readonly authorize: (payload: P) => boolean
  readonly run: (payload: P, identity: string) => Handled
}

/** One table of every handled operation, and the answer when the policy refuses: the whole behaviour of a kind of connection. */
export interface OperationTable {
  readonly specs: { readonly [Op in HandledOperation]: OperationSpec<PayloadOf<Op>> }
  readonly denied: Handled
}

/** Where a token lives: `bucket` absent is the default bucket. */
export const tokenKey = (payload: {
  readonly provider: string
  readonly bucket?: string | undefined
}): TokenKey => ({
  provider: payload.provider,
  bucket: payload.bucket ?? DEFAULT_BUCKET
})

export const json = (value: unknown): Either.Either<string, ProxyError> => Either.right(JSON.stringify(value))

/** A list operation never fails on a store error (§6): an empty list instead. */
export const orEmpty = <A>(list: Effect.Effect<ReadonlyArray<A>, ProxyError>) =>
  Effect.orElseSucceed(list, () => [])

/** The stored token of `key` (from memory when the store holds it), answered by `answer`, or refused with `missing`. */
export const withToken = (
  tokens: TokenStoreShape,
  key: TokenKey,
  missing: ProxyError,
  answer: (token: OAuthToken) => Handled
): Handled =>
  fromStore(
    tokens.cached(key),
    () => tokens.get(key),
    (token) => (token === undefined ? refuse(missing) : answer(token))
  )

/**
 * The credential a request uses, as the user is asked to confirm it: the
 * token or key it names, when the policy allows it (a refused one is refused
 * without asking). Listings, statistics and existence checks use none.
 */
const credentialOf = (
  request: DecodedRequest & { readonly op: HandledOperation },
  policy: AccessPolicyShape
): string | undefined => {
  switch (request.op) {
    case "get_token":
    case "save_token":
    case "remove_token":
    case "refresh_token": {
      const key = tokenKey(request.payload)
      return policy.allowsToken(key.provider, key.bucket) ? `token ${key.provider}:${key.bucket}` : undefined
    }
    case "get_api_key":
      return policy.allowsKey(request.payload.name) ? `key ${request.payload.name}` : undefined
    default:
      return undefined
  }
}

/**
 * One handler per operation (PROTOCOL.md §6), chosen by one lookup in one
 * table: the open table, or with `restrict` the table of restricted
 * connections (§19), the one place that decides what such a connection may
 * do. The access policy comes first, then, with `--confirm`, the user's
 * confirmation of a credential this identity has not been allowed to use for
 * the session, then the handler; a refused request touches no store.
 * Handlers answer from what the stores already hold where they can
 * (`fromStore`) and otherwise describe the work; they never run it.
 */
export const makeOperations = (
  deps: OperationDeps,
  options: { readonly restrict: boolean }
): ((request: DecodedRequest & { readonly op: HandledOperation }, asker: Asker) => Handled) => {
  const { specs, denied } = options.restrict ? restrictedSpecs(deps) : openSpecs(deps)
  const { confirm, policy } = deps
  return (request, asker) => {
    // The request's op picks its spec; TypeScript cannot relate the two through the table, hence the cast.
    const spec = specs[request.op] as OperationSpec<unknown>
    if (!spec.authorize(request.payload)) return denied
    const { identity } = asker
    if (!confirm.enabled) return spec.run(request.payload, identity)
    const credential = credentialOf(request, policy)
    if (credential === undefined || confirm.approved(identity, credential))
      return spec.run(request.payload, identity)
    return run(
      Effect.zipRight(
        confirm.ask(asker, credential, request.op),
        Effect.suspend(() => toEffect(spec.run(request.payload, identity)))
      )
    )
  }
}
