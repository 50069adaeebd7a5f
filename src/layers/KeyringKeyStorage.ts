import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import type { StoreFailure } from "../errors/errors.js"
import { KeyStorage, type KeyStorageShape } from "../services/KeyStorage.js"
import { LISTING_LIMIT } from "../services/TokenStore.js"
import { Keyring, type KeyringShape } from "./keyring/keyring-client.js"
import { keyAccount, listingOf, lookAt, valueStamp } from "./keyring/keyring-entries.js"
import { makeListingCache } from "./store-cache/listing-cache.js"
import { ABSENT } from "./store-cache/stamp.js"
import { makeStoreCache } from "./store-cache/store-cache.js"

/**
 * API keys in the OS keyring (docs/PROTOCOL.md §21): one entry per name, account
 * `key:<name>`, its value the key as a JSON string. Reads are cached and
 * re-checked like the keyring token store's; listings come from the
 * keyring's search, at most LISTING_LIMIT names.
 */

/** An entry's value as a key: a JSON string, anything else is `Corrupt`. */
const decodeKey = (text: string) =>
  Either.try({ try: (): unknown => JSON.parse(text), catch: () => undefined }).pipe(
    Either.flatMap((json) => (typeof json === "string" ? Either.right(json) : Either.left(undefined)))
  )

export const make = (keyring: KeyringShape): Effect.Effect<KeyStorageShape> =>
  Effect.map(Effect.clock, (clock) => {
    const cache = makeStoreCache<string>({ clock, decode: decodeKey })
    const listing = makeListingCache(clock, (_: "all") => Effect.map(keyring.list(LISTING_LIMIT), listingOf))
    const get = (name: string) =>
      cache.get(name, lookAt(keyring, keyAccount(name)), `keyring:${keyAccount(name)}`)

    const set = (name: string, value: string): Effect.Effect<void, StoreFailure> =>
      Effect.suspend(() => {
        const text = JSON.stringify(value)
        return Effect.zipRight(
          keyring.set(keyAccount(name), text, "set"),
          Effect.sync(() => {
            cache.remember(name, value, valueStamp(text))
            listing.invalidate("all")
          })
        )
      })

    const remove = (name: string): Effect.Effect<void, StoreFailure> =>
      Effect.zipRight(
        keyring.remove(keyAccount(name), "remove"),
        Effect.sync(() => {
          cache.remember(name, undefined, ABSENT)
          listing.invalidate("all")
        })
      )

    return KeyStorage.of({
      cached: cache.cached,
      get,
      has: (name) => Effect.map(get(name), (value) => value !== undefined),
      list: (include) =>
        Effect.map(listing.get("all"), ({ keys }) =>
          include === undefined ? keys : keys.filter((name) => include(name))
        ),
      set,
      remove
    })
  })

/** The keyring key storage on the `Keyring` in context. */
export const layer: Layer.Layer<KeyStorage, never, Keyring> = Layer.effect(
  KeyStorage,
  Effect.flatMap(Keyring, make)
)
