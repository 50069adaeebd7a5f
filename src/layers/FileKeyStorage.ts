import * as fsp from "node:fs/promises"
import * as path from "node:path"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import { errorCode, StoreFailure } from "../errors/errors.js"
import { KeyStorage, type KeyStorageShape } from "../services/KeyStorage.js"
import { ensureDir, writeFileAtomic } from "./file-store/atomic-file.js"
import { ABSENT, makeFileCache, stampOf } from "./file-store/file-cache.js"
import { decodeName, encodeName } from "./file-store/name-encoding.js"
import { openStoreDir } from "./file-store/store-dir.js"

/**
 * API keys on disk, one file per name: `${dataDir}/keys/<enc(name)>.key`
 * holding the raw value as UTF-8 (files 0600, directories 0700). Reads are
 * cached and re-checked like the token store's.
 */

const KEY_SUFFIX = ".key"

/** The storage for `dataDir` (created 0700 if missing); the scope bounds the cache's life. */
export const make = (dataDir: string): Effect.Effect<KeyStorageShape, StoreFailure, Scope.Scope> =>
  Effect.gen(function* () {
    const keysDir = yield* openStoreDir(dataDir, "keys", 1)
    const cache = makeFileCache<string>({ clock: yield* Effect.clock, decode: Either.right })
    yield* Effect.addFinalizer(() => Effect.sync(() => cache.clear()))

    const keyFile = (name: string): string => path.join(keysDir, encodeName(name) + KEY_SUFFIX)
    const get = (name: string) => cache.get(name, () => keyFile(name))

    const list: Effect.Effect<ReadonlyArray<string>, StoreFailure> = Effect.tryPromise({
      try: async () => {
        const entries = await fsp.readdir(keysDir, { withFileTypes: true }).catch((error: unknown) => {
          if (errorCode(error) === "ENOENT") return []
          throw error
        })
        const names: Array<string> = []
        for (const entry of entries) {
          if (!entry.isFile() || entry.name.startsWith(".") || !entry.name.endsWith(KEY_SUFFIX)) continue
          const name = decodeName(entry.name.slice(0, -KEY_SUFFIX.length))
          if (name !== undefined) names.push(name)
        }
        return names.sort()
      },
      catch: (cause) => StoreFailure.io("list", cause)
    })

    const set = (name: string, value: string): Effect.Effect<void, StoreFailure> =>
      Effect.suspend(() =>
        ensureDir("set", keysDir).pipe(
          Effect.zipRight(writeFileAtomic("set", keyFile(name), value)),
          Effect.map((stats) => cache.remember(name, value, stampOf(stats)))
        )
      )

    const remove = (name: string): Effect.Effect<void, StoreFailure> =>
      Effect.tryPromise({
        try: async () => {
          await fsp.unlink(keyFile(name)).catch((error: unknown) => {
            if (errorCode(error) !== "ENOENT") throw error
          })
          cache.remember(name, undefined, ABSENT)
        },
        catch: (cause) => StoreFailure.io("remove", cause)
      })

    return KeyStorage.of({
      cached: cache.cached,
      get,
      has: (name) => Effect.map(get(name), (value) => value !== undefined),
      list,
      set,
      remove
    })
  })

/** The file key storage as a Layer; fails when `dataDir` cannot be created. */
export const layer = (dataDir: string): Layer.Layer<KeyStorage, StoreFailure> =>
  Layer.scoped(KeyStorage, make(dataDir))
