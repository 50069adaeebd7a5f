import * as path from "node:path"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import type { StoreFailure } from "../../errors/errors.js"
import { ensureDir, removeStaleTempFiles } from "./atomic-file.js"

/**
 * Opens one store's directory under the data directory (`tokens`, `keys`):
 * both created 0700 when missing, and temp files a killed writer left behind
 * swept (`depth` 2 also looks one level down, in the provider directories).
 */
export const openStoreDir = (
  dataDir: string,
  name: string,
  depth: 1 | 2
): Effect.Effect<string, StoreFailure> =>
  Effect.gen(function* () {
    const root = path.resolve(dataDir)
    const dir = path.join(root, name)
    yield* ensureDir("open", root)
    yield* ensureDir("open", dir)
    yield* removeStaleTempFiles(dir, depth, yield* Clock.currentTimeMillis)
    return dir
  })
