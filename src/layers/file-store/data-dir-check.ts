import * as fsp from "node:fs/promises"
import * as path from "node:path"
import * as Effect from "effect/Effect"
import { errorCode, StoreFailure } from "../../errors/errors.js"
import { DataDirRefused } from "../../errors/startup.js"
import { ensureDirAsync } from "./atomic-file.js"

/**
 * The data directory's own checks (PROTOCOL.md §22), made by every command
 * before it uses the directory: it is resolved to its real path, and it and
 * its store directories (STORE_DIRS) must be directories owned by this user
 * that group and others cannot write, the store directories not links, else
 * `DataDirRefused` (exit 2).
 */

/**
 * The data directory's own directories: each is checked by every command,
 * whichever it uses (`run` holds the admin sockets of running servers).
 */
export const STORE_DIRS = ["tokens", "keys", "keyring-locks", "run"] as const
export type StoreDirName = (typeof STORE_DIRS)[number]

const uid = (): number | undefined => process.getuid?.()

/** Why a directory is not private to us, or `undefined` when it is. */
export const dirProblem = (stats: {
  readonly uid: number
  readonly mode: number
  isDirectory(): boolean
}): DataDirRefused["problem"] | undefined => {
  if (!stats.isDirectory()) return "NotADirectory"
  const own = uid()
  if (own !== undefined && stats.uid !== own) return "Owner"
  return (stats.mode & 0o022) === 0 ? undefined : "Writable"
}

/** The refusal of `dir` for `problem`, with its owner and mode when they are known. */
export const refusal = (
  dir: string,
  problem: DataDirRefused["problem"],
  stats?: { readonly uid: number; readonly mode: number }
): DataDirRefused =>
  new DataDirRefused({
    dir,
    problem,
    ...(stats === undefined ? {} : { uid: stats.uid, mode: stats.mode & 0o777 })
  })

/** The refusal of the data directory at its real path `root`, or of the first store directory in it that is not private. */
const refusalIn = async (root: string): Promise<DataDirRefused | undefined> => {
  const rootStats = await fsp.stat(root)
  const rootProblem = dirProblem(rootStats)
  if (rootProblem !== undefined) return refusal(root, rootProblem, rootStats)
  for (const name of STORE_DIRS) {
    const dir = path.join(root, name)
    const stats = await fsp.lstat(dir).catch(() => undefined)
    if (stats === undefined) continue
    const problem = stats.isSymbolicLink() ? "Link" : dirProblem(stats)
    if (problem !== undefined) return refusal(dir, problem, stats)
  }
  return undefined
}

/**
 * The refusal for a path that cannot be a directory because a file (or a link
 * to one) is where it, or one of its parents, belongs: it names the nearest
 * existing path, the one to remove.
 */
const notADirectory = async (dataDir: string): Promise<DataDirRefused> => {
  let current = path.resolve(dataDir)
  for (;;) {
    const parent = path.dirname(current)
    const exists = await fsp.stat(current).then(
      () => true,
      () => false
    )
    if (exists || parent === current) return refusal(current, "NotADirectory")
    current = parent
  }
}

/**
 * The real path of the data directory once it and its store directories pass
 * the checks; with `create`, a missing one is created 0700 first, else a
 * missing one is `undefined` (nothing there to refuse).
 */
const checkDataDirAsync = async (
  dataDir: string,
  create: boolean
): Promise<string | DataDirRefused | undefined> => {
  try {
    if (create) await ensureDirAsync(dataDir)
    const root = await fsp.realpath(dataDir)
    return (await refusalIn(root)) ?? root
  } catch (error) {
    const code = errorCode(error)
    if (code === "EEXIST" || code === "ENOTDIR") return notADirectory(dataDir)
    if (code === "ENOENT" && !create) return undefined
    throw error
  }
}

/**
 * Checks the data directory (see above) and gives its real path: `DataDirRefused`
 * when it is not safe to keep credentials in (a regular file where it belongs
 * included: `NotADirectory`), a `StoreFailure` when it cannot be looked at.
 * With `create`, a missing one is created 0700; without, a missing one is
 * `undefined`.
 */
export const checkDataDir = <Create extends boolean>(
  dataDir: string,
  options: { readonly create: Create }
): Effect.Effect<Create extends true ? string : string | undefined, StoreFailure | DataDirRefused> =>
  Effect.tryPromise({
    try: () => checkDataDirAsync(dataDir, options.create),
    catch: (cause) => StoreFailure.io("open", cause)
  }).pipe(
    Effect.flatMap((checked) =>
      checked instanceof DataDirRefused
        ? Effect.fail(checked)
        : Effect.succeed(checked as Create extends true ? string : string | undefined)
    )
  )
