import * as fsp from "node:fs/promises"
import * as path from "node:path"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import { StoreFailure } from "../errors/errors.js"
import { KeyStorage, type KeyStorageShape } from "../services/KeyStorage.js"
import { ensureDir, errorCode, removeStaleTempFiles, writeFileAtomic } from "./atomic-file.js"
import { ABSENT, makeFileCache, stampOf } from "./file-cache.js"
import { decodeName, encodeName } from "./name-encoding.js"

/**
 * API keys on disk, one file per name: `${dataDir}/keys/<enc(name)>.key`
 * holding the raw value as UTF-8 (files 0600, directories 0700). Reads are
 * cached and re-checked like the token store's.
 */

const KEY_SUFFIX = ".key"

const EXIT_TRUE: Exit.Exit<boolean> = Exit.succeed(true)
const EXIT_FALSE: Exit.Exit<boolean> = Exit.succeed(false)

const withOperation =
  (operation: string) =>
  (error: StoreFailure): StoreFailure =>
    new StoreFailure({ operation, cause: error.cause })

/** The storage for `dataDir` (created 0700 if missing); the scope bounds the cache's life. */
export const make = (dataDir: string): Effect.Effect<KeyStorageShape, StoreFailure, Scope.Scope> =>
  Effect.gen(function* () {
    const root = path.resolve(dataDir)
    const keysDir = path.join(root, "keys")
    yield* ensureDir(root).pipe(Effect.zipRight(ensureDir(keysDir)), Effect.mapError(withOperation("open")))
    yield* removeStaleTempFiles(keysDir, 1, yield* Clock.currentTimeMillis)

    const clock = yield* Effect.clock
    const cache = makeFileCache<string>({ clock, decode: Either.right })
    yield* Effect.addFinalizer(() => Effect.sync(() => cache.clear()))

    const keyFile = (name: string): string => path.join(keysDir, encodeName(name) + KEY_SUFFIX)

    const get = (name: string): Effect.Effect<string | undefined, StoreFailure> => {
      const entry = cache.fresh(name)
      return entry !== undefined ? entry.exit : cache.revalidate(name, keyFile(name), "get")
    }

    const has = (name: string): Effect.Effect<boolean, StoreFailure> => {
      const entry = cache.fresh(name)
      if (entry !== undefined) return entry.value === undefined ? EXIT_FALSE : EXIT_TRUE
      return Effect.map(cache.revalidate(name, keyFile(name), "has"), (value) => value !== undefined)
    }

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
      catch: (cause) => new StoreFailure({ operation: "list", cause })
    })

    const set = (name: string, value: string): Effect.Effect<void, StoreFailure> =>
      Effect.suspend(() => {
        const file = keyFile(name)
        return ensureDir(keysDir).pipe(
          Effect.zipRight(writeFileAtomic(file, value)),
          Effect.map((stats) => cache.remember(name, value, stampOf(stats))),
          Effect.mapError(withOperation("set"))
        )
      })

    const remove = (name: string): Effect.Effect<void, StoreFailure> =>
      Effect.tryPromise({
        try: async () => {
          await fsp.unlink(keyFile(name)).catch((error: unknown) => {
            if (errorCode(error) !== "ENOENT") throw error
          })
          cache.remember(name, undefined, ABSENT)
        },
        catch: (cause) => new StoreFailure({ operation: "remove", cause })
      })

    return KeyStorage.of({ get, has, list, set, remove })
  })

/** The file key storage as a Layer; fails when `dataDir` cannot be created. */
export const layer = (dataDir: string): Layer.Layer<KeyStorage, StoreFailure> =>
  Layer.scoped(KeyStorage, make(dataDir))
