import { createHash } from "node:crypto"
import * as Effect from "effect/Effect"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Scope from "effect/Scope"
import { StoreFailure } from "../errors/errors.js"
import type { DataDirRefused } from "../errors/startup.js"
import * as KeyedLock from "../lib/keyed-lock.js"
import type { OAuthToken } from "../protocol/token.js"
import type { TokenFilter, TokenKey, TokenStoreShape } from "../services/TokenStore.js"
import { LISTING_LIMIT, TokenStore } from "../services/TokenStore.js"
import type { StoreDirName } from "./file-store/data-dir-check.js"
import { lockFile } from "./file-store/file-lock.js"
import { openStoreDir } from "./file-store/store-dir.js"
import { Keyring, type KeyringShape } from "./keyring/keyring-client.js"
import { listingOf, lookAt, tokenAccount, valueStamp } from "./keyring/keyring-entries.js"
import { makeListingCache } from "./store-cache/listing-cache.js"
import { ABSENT } from "./store-cache/stamp.js"
import { makeStoreCache } from "./store-cache/store-cache.js"
import { decodeStoredToken } from "./store-cache/stored-token.js"

/**
 * Tokens in the OS keyring (docs/PROTOCOL.md §21): one entry per provider:bucket
 * (`keyring/keyring-entries.ts`), its value the token's compact JSON, exactly
 * what the file store writes. What the file store guarantees holds here too:
 * reads come from the same revalidating cache (fresh for 500 ms, 8 MiB, least
 * recently used dropped first), so the hot path never waits for D-Bus; this
 * process's writes show at once; listings are shared and kept for 500 ms and
 * read at most LISTING_LIMIT entries of each kind. The keyring has no lock of
 * its own: the provider:bucket lock is the in-process permit and then a
 * `proper-lockfile` directory in `{dataDir}/keyring-locks`, named by the
 * SHA-256 of the entry's account, so processes that share the keyring and
 * the data directory exclude each other as with the file store.
 */

const LOCK_DIR: StoreDirName = "keyring-locks"

/** The lock's name for `key`: fixed length whatever the names, so it always fits a file name. */
const lockName = (key: TokenKey): string => createHash("sha256").update(tokenAccount(key)).digest("hex")

/** The keyring token store; its locks live in `dataDir` (created 0700 if missing, refused if not private). */
export const make = (
  keyring: KeyringShape,
  dataDir: string
): Effect.Effect<TokenStoreShape, StoreFailure | DataDirRefused, Scope.Scope> =>
  Effect.gen(function* () {
    const locksDir = yield* openStoreDir(dataDir, LOCK_DIR)
    const clock = yield* Effect.clock
    const cache = makeStoreCache<OAuthToken>({ clock, decode: decodeStoredToken })
    const locks = yield* KeyedLock.make
    yield* Effect.addFinalizer(() => Effect.sync(() => cache.clear()))

    const listing = makeListingCache(clock, (_: "all") => Effect.map(keyring.list(LISTING_LIMIT), listingOf))
    const read = (key: TokenKey, fresh: boolean) => {
      const account = tokenAccount(key)
      const id = KeyedLock.tokenKeyId(key)
      const relative = `keyring:${account}`
      return fresh
        ? cache.revalidate(id, lookAt(keyring, account), relative)
        : cache.get(id, lookAt(keyring, account), relative)
    }

    const save = (key: TokenKey, token: OAuthToken): Effect.Effect<void, StoreFailure> =>
      Effect.gen(function* () {
        const text = yield* Effect.try({
          try: () => JSON.stringify(token),
          catch: () => new StoreFailure({ operation: "save", reason: "Unserializable" })
        })
        yield* keyring.set(tokenAccount(key), text, "save")
        cache.remember(KeyedLock.tokenKeyId(key), token, valueStamp(text))
        listing.invalidate("all")
      })

    const remove = (key: TokenKey): Effect.Effect<void, StoreFailure> =>
      Effect.zipRight(
        keyring.remove(tokenAccount(key), "remove"),
        Effect.sync(() => {
          cache.remember(KeyedLock.tokenKeyId(key), undefined, ABSENT)
          listing.invalidate("all")
        })
      )

    const listProviders = (filter?: TokenFilter): Effect.Effect<ReadonlyArray<string>, StoreFailure> =>
      Effect.map(listing.get("all"), ({ tokens }) =>
        [...tokens.keys()]
          .filter(
            (provider) =>
              filter === undefined ||
              (filter.provider(provider) &&
                (tokens.get(provider) ?? []).some((bucket) => filter.token(provider, bucket)))
          )
          .sort()
      )

    /** In-process permit first, then the lock directory; a failed attempt holds nothing (as the file store). */
    const lock = (key: TokenKey): Effect.Effect<void, StoreFailure, Scope.Scope> =>
      Effect.gen(function* () {
        const inner = yield* Scope.fork(yield* Effect.scope, ExecutionStrategy.sequential)
        const name = lockName(key)
        yield* locks.acquire(KeyedLock.tokenKeyId(key)).pipe(
          Effect.zipRight(lockFile(locksDir.entry(name), `${LOCK_DIR}/${name}.lock`)),
          Scope.extend(inner),
          Effect.onExit((exit) => (Exit.isSuccess(exit) ? Effect.void : Scope.close(inner, exit)))
        )
      })

    return TokenStore.of({
      cached: (key) => cache.cached(KeyedLock.tokenKeyId(key)),
      get: (key) => read(key, false),
      getLatest: (key) => read(key, true),
      save,
      remove,
      listProviders,
      listBuckets: (provider) => Effect.map(listing.get("all"), ({ tokens }) => tokens.get(provider) ?? []),
      lock
    })
  })

/** The keyring token store on the `Keyring` in context. */
export const layer = (dataDir: string): Layer.Layer<TokenStore, StoreFailure | DataDirRefused, Keyring> =>
  Layer.scoped(
    TokenStore,
    Effect.flatMap(Keyring, (keyring) => make(keyring, dataDir))
  )
