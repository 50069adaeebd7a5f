import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import { Forbidden } from "../errors/errors.js"
import { DEFAULT_BUCKET } from "../protocol/names.js"
import { type OAuthToken, sanitizedTokenJson } from "../protocol/token.js"
import type { TokenKey } from "../services/TokenStore.js"
import { fromStore, type Handled, ready, refuse, run } from "./handled.js"
import {
  json,
  type OperationDeps,
  type OperationSpec,
  type OperationTable,
  tokenKey,
  withToken
} from "./operations.js"

const DENIED = new Forbidden({ reason: "Restricted" })

/**
 * Restricted connections (PROTOCOL.md §19), all of them in one table: such a
 * connection may only read what it names, and learns nothing else. What is
 * not stored and what the policy excludes look the same (`FORBIDDEN`
 * "access denied": no existence oracle); lists are empty; nothing is written;
 * nothing is enumerated; it cannot ask for a refresh, but an expired token
 * it reads is refreshed on the host first.
 */
export const restrictedSpecs = (deps: OperationDeps): OperationTable => {
  const { tokens, keys, policy, refresh, renewal, nowMs } = deps

  /** Every operation the table lets through decides on the policy itself, so refusals all look alike. */
  const always = <P>(run: (payload: P) => Handled): OperationSpec<P> => ({ authorize: () => true, run })
  const forbidden: OperationSpec<unknown> = always(() => refuse(DENIED))
  const empty = (field: string): OperationSpec<unknown> => always(() => ready(json({ [field]: [] })))

  /** An expired token goes through the refresh coordinator before it is answered (§6 rules, lock and cooldown). */
  const answerToken = (key: TokenKey, token: OAuthToken): Handled => {
    renewal.watch(key, token)
    if (token.expiry * 1000 > nowMs()) return ready(Either.right(sanitizedTokenJson(token)))
    // Removed meanwhile: refused like any token that is not stored.
    return run(
      refresh.refresh(key).pipe(
        Effect.map(sanitizedTokenJson),
        Effect.catchTag("NotFound", () => Effect.fail(DENIED))
      )
    )
  }

  const specs: OperationTable["specs"] = {
    get_token: always((p) => {
      const key = tokenKey(p)
      if (!policy.allowsToken(key.provider, key.bucket)) return refuse(DENIED)
      return withToken(tokens, key, DENIED, (token) => answerToken(key, token))
    }),
    get_api_key: always((p) => {
      if (!policy.allowsKey(p.name)) return refuse(DENIED)
      return fromStore(
        keys.cached(p.name),
        () => keys.get(p.name),
        (value) =>
          value === undefined ? refuse(DENIED) : ready(Either.right(`{"key":${JSON.stringify(value)}}`))
      )
    }),
    list_providers: empty("providers"),
    list_buckets: empty("buckets"),
    list_api_keys: empty("keys"),
    get_bucket_stats: always((p) =>
      ready(json({ bucket: p.bucket ?? DEFAULT_BUCKET, requestCount: 0, percentage: 0 }))
    ),
    save_token: forbidden,
    remove_token: forbidden,
    has_api_key: forbidden,
    refresh_token: forbidden,
    oauth_initiate: forbidden,
    oauth_exchange: forbidden,
    oauth_poll: forbidden,
    oauth_cancel: forbidden
  }

  return { specs, denied: refuse(DENIED) }
}
