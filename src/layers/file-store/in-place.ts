import * as fsp from "node:fs/promises"
import * as Effect from "effect/Effect"
import { StoreFailure, type StoreOperation } from "../../errors/errors.js"
import type { StoreDir } from "./store-dir.js"

/**
 * A change of the store counts only while the directories it goes through are
 * still where the store opened them (PROTOCOL.md §22, same device and inode
 * at the same path): a store directory moved out of the data directory must
 * not keep anything of ours, nor take our changes.
 */

/** The first of `dirs` that is no longer at its path, if any. */
const firstMoved = (dirs: ReadonlyArray<StoreDir>): Effect.Effect<StoreDir | undefined> =>
  Effect.promise(async () => {
    for (const dir of dirs) if (!(await dir.inPlace())) return dir
    return undefined
  })

/** Logs `message` naming the moved directory by its store-relative name, and fails with `Moved`. */
const movedFailure = (operation: StoreOperation, moved: StoreDir, message: string) =>
  Effect.logWarning(message).pipe(
    Effect.annotateLogs({ entry: moved.relative }),
    Effect.zipRight(Effect.fail(new StoreFailure({ operation, reason: "Moved" })))
  )

/**
 * After writing `name` in `dir`: when `dir` or one of `parents` was moved
 * meanwhile, the file just written is removed again (through `dir`'s
 * descriptor, wherever it is now), and the write fails with `Moved`.
 */
export const undoIfMoved = (
  operation: StoreOperation,
  dir: StoreDir,
  name: string,
  parents: ReadonlyArray<StoreDir> = []
): Effect.Effect<void, StoreFailure> =>
  Effect.flatMap(firstMoved([dir, ...parents]), (moved) =>
    moved === undefined
      ? Effect.void
      : Effect.zipRight(
          Effect.promise(() => fsp.unlink(dir.entry(name)).catch(() => undefined)),
          movedFailure(operation, moved, "store directory moved during a write; the write was undone")
        )
  )

/** Before a change that cannot be undone (a removal): fails with `Moved`, changing nothing, when one of `dirs` was moved. */
export const refuseIfMoved = (
  operation: StoreOperation,
  dirs: ReadonlyArray<StoreDir>
): Effect.Effect<void, StoreFailure> =>
  Effect.flatMap(firstMoved(dirs), (moved) =>
    moved === undefined
      ? Effect.void
      : movedFailure(operation, moved, "store directory moved; the change was refused")
  )
