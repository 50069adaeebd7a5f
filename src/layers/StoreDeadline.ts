import type * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { type StoreError, type StoreOperation, StoreTimeout } from "../errors/errors.js"
import { KeyStorage, type KeyStorageShape } from "../services/KeyStorage.js"
import { TokenStore, type TokenStoreShape } from "../services/TokenStore.js"

/**
 * The host-side deadline of one store call (PROTOCOL.md §10: 15 s →
 * `INTERNAL_ERROR`), in one place: a decorator over whatever token store and
 * key storage are in context. Every Effect method gets the deadline (a lock
 * wait included); `cached` is synchronous and passes through untouched.
 */

/**
 * Puts the deadline on every Effect method of `service`: each is named by the
 * store operation its timeout reports. Every member but `cached` must be
 * named, so a new store method cannot go without a deadline.
 */
const withDeadline = <S extends { readonly cached: unknown }>(
  service: S,
  operations: { readonly [K in keyof S as K extends "cached" ? never : K]: StoreOperation },
  timeoutMs: number
): S => {
  const within = <A, R>(operation: StoreOperation, call: Effect.Effect<A, StoreError, R>) =>
    Effect.timeoutFail(call, {
      duration: Duration.millis(timeoutMs),
      onTimeout: () => new StoreTimeout({ operation })
    })
  const decorated: Record<string, unknown> = { ...service }
  for (const [name, operation] of Object.entries(operations) as Array<[keyof S & string, StoreOperation]>) {
    const member = service[name] as unknown
    if (member === undefined) continue
    decorated[name] = Effect.isEffect(member)
      ? within(operation, member as Effect.Effect<unknown, StoreError>)
      : (...args: Array<unknown>) =>
          within(operation, (member as (...a: Array<unknown>) => Effect.Effect<unknown, StoreError>)(...args))
  }
  return decorated as S
}

export const decorateTokenStore = (store: TokenStoreShape, timeoutMs: number): TokenStoreShape =>
  withDeadline(
    store,
    {
      get: "get",
      getLatest: "get",
      save: "save",
      remove: "remove",
      listProviders: "list",
      listBuckets: "list",
      bucketStats: "get",
      lock: "lock"
    },
    timeoutMs
  )

export const decorateKeyStorage = (storage: KeyStorageShape, timeoutMs: number): KeyStorageShape =>
  withDeadline(storage, { get: "get", has: "get", list: "list", set: "set", remove: "remove" }, timeoutMs)

/** A Layer that provides `tag` as `decorate` makes it from the `tag` it is provided with. */
const decorating = <I, S>(tag: Context.Tag<I, S>, decorate: (service: S) => S): Layer.Layer<I, never, I> =>
  Layer.effect(tag, Effect.map(tag, decorate))

/** Puts the deadline on the `TokenStore` it is provided with. */
export const tokens = (timeoutMs: number): Layer.Layer<TokenStore, never, TokenStore> =>
  decorating(TokenStore, (store) => decorateTokenStore(store, timeoutMs))

/** Puts the deadline on the `KeyStorage` it is provided with. */
export const keys = (timeoutMs: number): Layer.Layer<KeyStorage, never, KeyStorage> =>
  decorating(KeyStorage, (storage) => decorateKeyStorage(storage, timeoutMs))

/** Both. */
export const layer = (
  timeoutMs: number
): Layer.Layer<TokenStore | KeyStorage, never, TokenStore | KeyStorage> =>
  Layer.merge(tokens(timeoutMs), keys(timeoutMs))
