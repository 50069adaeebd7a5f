import type { Dirent } from "node:fs"
import * as fsp from "node:fs/promises"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import { errorCode, StoreFailure } from "../errors/errors.js"
import type { DataDirRefused } from "../errors/startup.js"
import { decodeName, encodeName } from "../lib/name-encoding.js"
import { KeyStorage, type KeyStorageShape } from "../services/KeyStorage.js"
import { LISTING_LIMIT } from "../services/TokenStore.js"
import { removeStaleTempFiles, writeFileAtomic } from "./file-store/atomic-file.js"
import { readFileIfChanged } from "./file-store/file-read.js"
import { stampOf } from "./file-store/file-stamp.js"
import { refuseIfMoved, undoIfMoved } from "./file-store/in-place.js"
import { listFailure, readEntries } from "./file-store/listing.js"
import { openStoreDir } from "./file-store/store-dir.js"
import { makeListingCache } from "./store-cache/listing-cache.js"
import { ABSENT } from "./store-cache/stamp.js"
import { type Look, makeStoreCache } from "./store-cache/store-cache.js"

/**
 * API keys on disk, one file per name: `${dataDir}/keys/<enc(name)>.key`
 * holding the raw value as UTF-8 (files 0600, the directory 0700), reached
 * through the directory's descriptor and never through a link. Reads are
 * cached and re-checked like the token store's. Like a token write, a key
 * write is undone, and a removal refused, when `keys` was moved out of the
 * data directory meanwhile (`Moved`).
 */

const KEY_SUFFIX = ".key"

const nameOf = (entry: Dirent): string | undefined =>
  entry.isFile() && !entry.name.startsWith(".") && entry.name.endsWith(KEY_SUFFIX)
    ? decodeName(entry.name.slice(0, -KEY_SUFFIX.length))
    : undefined

/** The storage for `dataDir` (created 0700 if missing, refused if not private); the scope bounds its life. */
export const make = (
  dataDir: string
): Effect.Effect<KeyStorageShape, StoreFailure | DataDirRefused, Scope.Scope> =>
  Effect.gen(function* () {
    const keys = yield* openStoreDir(dataDir, "keys")
    yield* removeStaleTempFiles(keys, yield* Clock.currentTimeMillis)
    const clock = yield* Effect.clock
    const cache = makeStoreCache<string>({ clock, decode: Either.right })
    yield* Effect.addFinalizer(() => Effect.sync(() => cache.clear()))

    const fileOf = (name: string): string => encodeName(name) + KEY_SUFFIX
    const look =
      (name: string): Look =>
      (before) =>
        Effect.tryPromise({
          try: () => readFileIfChanged(keys.entry(fileOf(name)), before),
          catch: (cause) => StoreFailure.io("get", cause)
        })
    const get = (name: string) => cache.get(name, look(name), `keys/${fileOf(name)}`)

    const listing = makeListingCache(clock, (_: "all") =>
      Effect.tryPromise({
        try: () => readEntries(keys.entry("."), LISTING_LIMIT, (entry) => nameOf(entry) !== undefined),
        catch: listFailure
      }).pipe(Effect.map((entries) => entries.flatMap((entry) => nameOf(entry) ?? []).sort()))
    )

    const set = (name: string, value: string): Effect.Effect<void, StoreFailure> =>
      writeFileAtomic("set", keys, fileOf(name), value).pipe(
        Effect.tap(() => undoIfMoved("set", keys, fileOf(name))),
        Effect.tap((stats) =>
          Effect.sync(() => {
            cache.remember(name, value, stampOf(stats))
            listing.invalidate("all")
          })
        ),
        Effect.asVoid
      )

    const remove = (name: string): Effect.Effect<void, StoreFailure> =>
      Effect.zipRight(
        refuseIfMoved("remove", [keys]),
        Effect.tryPromise({
          try: async () => {
            await fsp.unlink(keys.entry(fileOf(name))).catch((error: unknown) => {
              if (errorCode(error) !== "ENOENT") throw error
            })
            cache.remember(name, undefined, ABSENT)
            listing.invalidate("all")
          },
          catch: (cause) => StoreFailure.io("remove", cause)
        })
      )

    return KeyStorage.of({
      cached: cache.cached,
      get,
      has: (name) => Effect.map(get(name), (value) => value !== undefined),
      list: (include) =>
        Effect.map(listing.get("all"), (all) =>
          include === undefined ? all : all.filter((name) => include(name))
        ),
      set,
      remove
    })
  })

/** The file key storage as a Layer; fails when `dataDir` cannot be created or is not private. */
export const layer = (dataDir: string): Layer.Layer<KeyStorage, StoreFailure | DataDirRefused> =>
  Layer.scoped(KeyStorage, make(dataDir))
