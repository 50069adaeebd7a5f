import type { Dirent } from "node:fs"
import * as fsp from "node:fs/promises"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Scope from "effect/Scope"
import { errorCode, StoreFailure } from "../errors/errors.js"
import type { DataDirRefused } from "../errors/startup.js"
import * as KeyedLock from "../lib/keyed-lock.js"
import { decodeName, encodeName } from "../lib/name-encoding.js"
import type { OAuthToken } from "../protocol/token.js"
import {
  LISTING_LIMIT,
  type TokenFilter,
  type TokenKey,
  TokenStore,
  type TokenStoreShape
} from "../services/TokenStore.js"
import { removeStaleTempFiles, writeFileAtomic } from "./file-store/atomic-file.js"
import { lockFile } from "./file-store/file-lock.js"
import { readFileIfChanged } from "./file-store/file-read.js"
import { stampOf } from "./file-store/file-stamp.js"
import { undoIfMoved } from "./file-store/in-place.js"
import { listFailure, readEntries } from "./file-store/listing.js"
import {
  type ChildOptions,
  openChild,
  openStoreDir,
  type StoreDir,
  withChild
} from "./file-store/store-dir.js"
import { makeListingCache } from "./store-cache/listing-cache.js"
import { ABSENT } from "./store-cache/stamp.js"
import { type Look, makeStoreCache } from "./store-cache/store-cache.js"
import { decodeStoredToken } from "./store-cache/stored-token.js"

/**
 * Tokens on disk, one JSON file per provider:bucket:
 * `${dataDir}/tokens/<enc(provider)>/<enc(bucket)>.json` (files 0600,
 * directories 0700), each holding the token's compact JSON: the file's size is
 * exactly the token's size as stored (`storedTokenBytes`, limited by §22).
 * Every file is reached through the directories' own descriptors and never
 * through a symbolic link (`file-store/store-dir.ts`).
 * Reads come from a cache re-checked against the disk at most every 500 ms,
 * so the hot path is a map lookup; this process's writes update the cache at
 * once. Listings are bounded and shared (`file-store/listing.ts`).
 */

const TOKEN_SUFFIX = ".json"
/** Provider directories a listing reads at once (a few, so that a large listing shares the I/O threads). */
const LISTING_CONCURRENCY = 4

/** A token file's bucket name, or `undefined` for anything else (temp files, lock dirs, links, strays). */
const bucketOf = (entry: Dirent): string | undefined => {
  const name = entry.name
  if (!entry.isFile() || name.startsWith(".") || !name.endsWith(TOKEN_SUFFIX)) return undefined
  return decodeName(name.slice(0, -TOKEN_SUFFIX.length))
}

const providerOf = (entry: Dirent): string | undefined =>
  entry.isDirectory() && !entry.name.startsWith(".") ? decodeName(entry.name) : undefined

const names = (
  entries: ReadonlyArray<Dirent>,
  decode: (entry: Dirent) => string | undefined
): Array<string> =>
  entries.flatMap((entry) => {
    const name = decode(entry)
    return name === undefined ? [] : [name]
  })

/** The store for `dataDir` (created 0700 if missing, refused if not private); the scope bounds its life. */
export const make = (
  dataDir: string
): Effect.Effect<TokenStoreShape, StoreFailure | DataDirRefused, Scope.Scope> =>
  Effect.gen(function* () {
    const tokens = yield* openStoreDir(dataDir, "tokens")
    const clock = yield* Effect.clock
    const cache = makeStoreCache<OAuthToken>({ clock, decode: decodeStoredToken })
    const locks = yield* KeyedLock.make
    yield* Effect.addFinalizer(() => Effect.sync(() => cache.clear()))

    const fileOf = (key: TokenKey) => encodeName(key.bucket) + TOKEN_SUFFIX
    const relative = (key: TokenKey) => `tokens/${encodeName(key.provider)}/${fileOf(key)}`
    const inProvider = <A, E>(
      provider: string,
      options: ChildOptions,
      use: (dir: StoreDir) => Effect.Effect<A, E>
    ) => withChild(tokens, encodeName(provider), options, use)

    /** A look at the token file of `key`, for the cache: absent while the provider has no directory. */
    const look =
      (key: TokenKey): Look =>
      (before) =>
        // A provider directory that is a link, or not private, reads as absent (and is logged).
        inProvider(key.provider, { create: false, operation: "get", skipRefused: true }, (dir) =>
          Effect.tryPromise({
            try: () => readFileIfChanged(dir.entry(fileOf(key)), before),
            catch: (cause) => StoreFailure.io("get", cause)
          })
        )

    const bucketListing = makeListingCache(clock, (provider: string) =>
      Effect.map(
        inProvider(provider, { create: false, operation: "list", skipRefused: true }, (dir) =>
          Effect.tryPromise({
            try: () => readEntries(dir.entry("."), LISTING_LIMIT, (entry) => bucketOf(entry) !== undefined),
            catch: listFailure
          })
        ),
        (entries) => names(entries ?? [], bucketOf).sort()
      )
    )
    const providerListing = makeListingCache(clock, (_: "all") =>
      Effect.tryPromise({
        try: () => readEntries(tokens.entry("."), LISTING_LIMIT, (entry) => providerOf(entry) !== undefined),
        catch: listFailure
      }).pipe(Effect.map((entries) => names(entries, providerOf).sort()))
    )
    const changed = (provider: string) => {
      providerListing.invalidate("all")
      bucketListing.invalidate(provider)
    }

    const save = (key: TokenKey, token: OAuthToken): Effect.Effect<void, StoreFailure> =>
      Effect.gen(function* () {
        const data = yield* Effect.try({
          // Compact, as `storedTokenBytes` measures it: the file is exactly the size the limit checks.
          try: () => JSON.stringify(token),
          catch: () => new StoreFailure({ operation: "save", reason: "Unserializable" })
        })
        const name = fileOf(key)
        const write = inProvider(key.provider, { create: true, operation: "save" }, (dir) =>
          // Nothing of ours may be left in a directory moved out of the store meanwhile.
          writeFileAtomic("save", dir, name, data).pipe(
            Effect.tap(() => undoIfMoved("save", dir, name, [tokens]))
          )
        )
        // The provider directory can vanish between its creation and the write (a concurrent
        // `remove` deleting it once empty): one more try recreates it.
        const stats = yield* write.pipe(
          Effect.catchIf(
            (error) => error.code === "ENOENT",
            () => write
          )
        )
        if (stats !== undefined) cache.remember(KeyedLock.tokenKeyId(key), token, stampOf(stats))
        changed(key.provider)
      })

    const remove = (key: TokenKey): Effect.Effect<void, StoreFailure> =>
      inProvider(key.provider, { create: false, operation: "remove" }, (dir) =>
        Effect.tryPromise({
          try: () =>
            fsp.unlink(dir.entry(fileOf(key))).catch((error: unknown) => {
              if (errorCode(error) !== "ENOENT") throw error
            }),
          catch: (cause) => StoreFailure.io("remove", cause)
        })
      ).pipe(
        Effect.zipRight(
          Effect.promise(async () => {
            cache.remember(KeyedLock.tokenKeyId(key), undefined, ABSENT)
            changed(key.provider)
            // Tidy up an emptied provider directory; any error (ENOTEMPTY: a lock or another token) is fine.
            await fsp.rmdir(tokens.entry(encodeName(key.provider))).catch(() => undefined)
          })
        )
      )

    /**
     * The providers the filter lets through (decided on names alone), then
     * those of them with a token the filter lets through: only the allowed
     * providers' directories are read, each listing at most LISTING_LIMIT
     * entries, as is the store's own directory.
     */
    const listProviders = (filter?: TokenFilter): Effect.Effect<ReadonlyArray<string>, StoreFailure> =>
      Effect.gen(function* () {
        const all = yield* providerListing.get("all")
        const candidates = filter === undefined ? all : all.filter((provider) => filter.provider(provider))
        const shown = yield* Effect.forEach(
          candidates,
          (provider) =>
            Effect.map(bucketListing.get(provider), (buckets) =>
              buckets.some((bucket) => filter === undefined || filter.token(provider, bucket))
            ),
          { concurrency: LISTING_CONCURRENCY }
        )
        return candidates.filter((_, i) => shown[i])
      })

    /** The provider's directory, created when missing, open until the scope closes. */
    const openProvider = (provider: string): Effect.Effect<StoreDir, StoreFailure, Scope.Scope> =>
      Effect.acquireRelease(
        Effect.flatMap(
          openChild(tokens, encodeName(provider), { create: true, operation: "lock" }),
          (child) =>
            child._tag === "Opened"
              ? Effect.succeed(child.dir)
              : Effect.fail(new StoreFailure({ operation: "lock", reason: "Io", code: "ENOENT" }))
        ),
        (dir) => Effect.promise(() => dir.close())
      )

    /** The file lock, in the provider's directory held open meanwhile. */
    const lockFileOf = (key: TokenKey) =>
      Effect.flatMap(openProvider(key.provider), (dir) =>
        lockFile(dir.entry(fileOf(key)), `${dir.relative}/${fileOf(key)}.lock`)
      )

    /**
     * In-process permit first (so this process never races itself for the
     * file lock), then the file lock; released in reverse order when the
     * caller's scope closes. Both live in a child scope that is closed at once
     * if taking the lock fails, so a failed attempt holds nothing.
     */
    const lock = (key: TokenKey): Effect.Effect<void, StoreFailure, Scope.Scope> =>
      Effect.gen(function* () {
        const inner = yield* Scope.fork(yield* Effect.scope, ExecutionStrategy.sequential)
        yield* locks.acquire(KeyedLock.tokenKeyId(key)).pipe(
          // The provider directory can be removed (emptied by a `remove`) between its opening and the lock.
          Effect.zipRight(
            lockFileOf(key).pipe(
              Effect.catchIf(
                (error) => error.code === "ENOENT",
                () => lockFileOf(key)
              )
            )
          ),
          Scope.extend(inner),
          Effect.onExit((exit) => (Exit.isSuccess(exit) ? Effect.void : Scope.close(inner, exit)))
        )
      })

    // Temp files a killed writer left behind, in the store and in each provider's directory.
    yield* removeStaleTempFiles(tokens, yield* Clock.currentTimeMillis)
    const providers = yield* Effect.tryPromise({
      try: () => readEntries(tokens.entry("."), LISTING_LIMIT, (entry) => providerOf(entry) !== undefined),
      catch: listFailure
    })
    for (const entry of providers) {
      yield* withChild(tokens, entry.name, { create: false, operation: "open", skipRefused: true }, (dir) =>
        removeStaleTempFiles(dir, clock.unsafeCurrentTimeMillis())
      )
    }

    return TokenStore.of({
      cached: (key) => cache.cached(KeyedLock.tokenKeyId(key)),
      get: (key) => cache.get(KeyedLock.tokenKeyId(key), look(key), relative(key)),
      getLatest: (key) => cache.revalidate(KeyedLock.tokenKeyId(key), look(key), relative(key)),
      save,
      remove,
      listProviders,
      listBuckets: (provider) => bucketListing.get(provider),
      lock
    })
  })

/** The file token store as a Layer; fails when `dataDir` cannot be created or is not private. */
export const layer = (dataDir: string): Layer.Layer<TokenStore, StoreFailure | DataDirRefused> =>
  Layer.scoped(TokenStore, make(dataDir))
