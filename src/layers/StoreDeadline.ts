import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import { type StoreError, type StoreOperation, StoreTimeout } from "../errors/errors.js"
import { KeyStorage, type KeyStorageShape } from "../services/KeyStorage.js"
import { TokenStore, type TokenStoreShape } from "../services/TokenStore.js"

/**
 * The host-side deadline of one store call (PROTOCOL.md §10: 15 s →
 * `INTERNAL_ERROR`), in one place: a decorator over whatever token store and
 * key storage are in context. Every Effect method gets the deadline (a lock
 * wait included); `cached` is synchronous and passes through untouched.
 */

type Deadline = <A, R>(
  operation: StoreOperation,
  call: Effect.Effect<A, StoreError, R>
) => Effect.Effect<A, StoreError, R>

const deadline =
  (timeoutMs: number): Deadline =>
  (operation, call) =>
    Effect.timeoutFail(call, {
      duration: Duration.millis(timeoutMs),
      onTimeout: () => new StoreTimeout({ operation })
    })

export const decorateTokenStore = (store: TokenStoreShape, timeoutMs: number): TokenStoreShape => {
  const within = deadline(timeoutMs)
  return TokenStore.of({
    cached: store.cached,
    get: (key) => within("get", store.get(key)),
    getLatest: (key) => within("get", store.getLatest(key)),
    save: (key, token) => within("save", store.save(key, token)),
    remove: (key) => within("remove", store.remove(key)),
    listProviders: within("list", store.listProviders),
    listBuckets: (provider) => within("list", store.listBuckets(provider)),
    lock: (key): Effect.Effect<void, StoreError, Scope.Scope> => within("lock", store.lock(key))
  })
}

export const decorateKeyStorage = (storage: KeyStorageShape, timeoutMs: number): KeyStorageShape => {
  const within = deadline(timeoutMs)
  return KeyStorage.of({
    cached: storage.cached,
    get: (name) => within("get", storage.get(name)),
    has: (name) => within("get", storage.has(name)),
    list: within("list", storage.list),
    set: (name, value) => within("set", storage.set(name, value)),
    remove: (name) => within("remove", storage.remove(name))
  })
}

/** Puts the deadline on the `TokenStore` it is provided with. */
export const tokens = (timeoutMs: number): Layer.Layer<TokenStore, never, TokenStore> =>
  Layer.effect(
    TokenStore,
    Effect.map(TokenStore, (store) => decorateTokenStore(store, timeoutMs))
  )

/** Puts the deadline on the `KeyStorage` it is provided with. */
export const keys = (timeoutMs: number): Layer.Layer<KeyStorage, never, KeyStorage> =>
  Layer.effect(
    KeyStorage,
    Effect.map(KeyStorage, (storage) => decorateKeyStorage(storage, timeoutMs))
  )

/** Both. */
export const layer = (
  timeoutMs: number
): Layer.Layer<TokenStore | KeyStorage, never, TokenStore | KeyStorage> =>
  Layer.merge(tokens(timeoutMs), keys(timeoutMs))
