import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as KeyedLock from "../../src/lib/keyed-lock.js"
import type { OAuthToken } from "../../src/protocol/token.js"
import { KeyStorage, type KeyStorageShape } from "../../src/services/KeyStorage.js"
import { type TokenKey, TokenStore, type TokenStoreShape } from "../../src/services/TokenStore.js"

/**
 * Stores in maps, for tests about logic (not about files): everything is
 * held in memory, so `cached` always knows, and `get` hands out the saved
 * object itself; `lock` is the in-process per-key lock only.
 */

interface Entry {
  readonly key: TokenKey
  readonly token: OAuthToken
}

export const makeTokenStore: Effect.Effect<TokenStoreShape, never, import("effect/Scope").Scope> = Effect.map(
  KeyedLock.make,
  (locks) => {
    const entries = new Map<string, Entry>()
    const read = (key: TokenKey) => entries.get(KeyedLock.tokenKeyId(key))?.token
    const get = (key: TokenKey) => Effect.sync(() => read(key))
    return TokenStore.of({
      cached: (key) => Option.some(read(key)),
      get,
      getLatest: get,
      save: (key, token) =>
        Effect.sync(() => {
          entries.set(KeyedLock.tokenKeyId(key), {
            key: { provider: key.provider, bucket: key.bucket },
            token
          })
        }),
      remove: (key) =>
        Effect.sync(() => {
          entries.delete(KeyedLock.tokenKeyId(key))
        }),
      listProviders: (filter) =>
        Effect.sync(() => {
          const shown = [...entries.values()].filter(
            ({ key }) =>
              filter === undefined ||
              (filter.provider(key.provider) && filter.token(key.provider, key.bucket))
          )
          return [...new Set(shown.map((entry) => entry.key.provider))].sort()
        }),
      listBuckets: (provider) =>
        Effect.sync(() =>
          [...entries.values()]
            .flatMap((entry) => (entry.key.provider === provider ? [entry.key.bucket] : []))
            .sort()
        ),
      lock: (key) => locks.acquire(KeyedLock.tokenKeyId(key))
    })
  }
)

export const makeKeyStorage: Effect.Effect<KeyStorageShape> = Effect.sync(() => {
  const entries = new Map<string, string>()
  return KeyStorage.of({
    cached: (name) => Option.some(entries.get(name)),
    get: (name) => Effect.sync(() => entries.get(name)),
    has: (name) => Effect.sync(() => entries.has(name)),
    list: (include) =>
      Effect.sync(() => [...entries.keys()].filter((name) => include?.(name) ?? true).sort()),
    set: (name, value) =>
      Effect.sync(() => {
        entries.set(name, value)
      }),
    remove: (name) =>
      Effect.sync(() => {
        entries.delete(name)
      })
  })
})

/** A fresh, empty in-memory token store per Layer build. */
export const tokenStoreLayer: Layer.Layer<TokenStore> = Layer.scoped(TokenStore, makeTokenStore)

/** A fresh, empty in-memory key storage per Layer build. */
export const keyStorageLayer: Layer.Layer<KeyStorage> = Layer.effect(KeyStorage, makeKeyStorage)

/** Both. */
export const layer: Layer.Layer<TokenStore | KeyStorage> = Layer.merge(tokenStoreLayer, keyStorageLayer)
