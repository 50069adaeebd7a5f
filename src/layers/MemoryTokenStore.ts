import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import type { OAuthToken } from "../protocol/token.js"
import { type TokenKey, TokenStore, type TokenStoreShape } from "../services/TokenStore.js"
import { makeKeyedSemaphore, tokenKeyId } from "./keyed-semaphore.js"

/**
 * Tokens in a map, for logic tests: `get` answers with a ready `Exit` (like the
 * file store's hot path) and hands out the saved object itself; `lock` is the
 * in-process per-key semaphore only.
 */

const EXIT_UNDEFINED: Exit.Exit<OAuthToken | undefined> = Exit.succeed(undefined)

interface Entry {
  readonly key: TokenKey
  readonly exit: Exit.Exit<OAuthToken | undefined>
}

const makeUnsafe = (): TokenStoreShape => {
  const entries = new Map<string, Entry>()
  const locks = makeKeyedSemaphore()

  const get = (key: TokenKey): Effect.Effect<OAuthToken | undefined> =>
    entries.get(tokenKeyId(key))?.exit ?? EXIT_UNDEFINED

  const listBuckets = (provider: string): Effect.Effect<ReadonlyArray<string>> =>
    Effect.sync(() =>
      [...entries.values()]
        .flatMap((entry) => (entry.key.provider === provider ? [entry.key.bucket] : []))
        .sort()
    )

  return TokenStore.of({
    get,
    getLatest: get,
    save: (key, token) =>
      Effect.sync(() => {
        entries.set(tokenKeyId(key), {
          key: { provider: key.provider, bucket: key.bucket },
          exit: Exit.succeed(token)
        })
      }),
    remove: (key) =>
      Effect.sync(() => {
        entries.delete(tokenKeyId(key))
      }),
    listProviders: Effect.sync(() =>
      [...new Set([...entries.values()].map((entry) => entry.key.provider))].sort()
    ),
    listBuckets,
    lock: (key) => locks.acquire(tokenKeyId(key))
  })
}

/** A fresh, empty in-memory token store. */
export const make: Effect.Effect<TokenStoreShape> = Effect.sync(makeUnsafe)

/** A fresh, empty in-memory token store per Layer build. */
export const layer: Layer.Layer<TokenStore> = Layer.effect(TokenStore, make)
