import { constants, existsSync } from "node:fs"
import * as fsp from "node:fs/promises"
import * as path from "node:path"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { errorCode, StoreFailure } from "../../errors/errors.js"
import { DataDirRefused } from "../../errors/startup.js"
import { DIR_MODE } from "./atomic-file.js"
import { checkDataDir, dirProblem, refusal, type StoreDirName } from "./data-dir-check.js"

/**
 * A directory of the store, held open and addressed through its descriptor
 * (PROTOCOL.md §22). Every file inside is reached as `entry(name)`: on Linux
 * that is `/proc/self/fd/{fd}/{name}`, which the kernel resolves from the
 * directory the descriptor refers to, wherever it is now, so swapping the
 * directory's path for another directory or a symbolic link does not move
 * where credproxy reads and writes. Elsewhere it is the real path (checked
 * again before each use). Files are opened with `O_NOFOLLOW`, so a symbolic
 * link where a file belongs is never followed.
 */
export interface StoreDir {
  /** The real path, for `inPlace` and the fallback without `/proc`. */
  readonly path: string
  /** The name relative to the data directory, the only name that reaches a log line. */
  readonly relative: string
  /** The path of `name` inside this directory, resolved through the descriptor where the platform can. */
  readonly entry: (name: string) => string
  /** Flushes a change of the directory's entries (a rename); errors are ignored. */
  readonly sync: () => Promise<void>
  /** True while the directory is still the one at its path (not moved or swapped since it was opened). */
  readonly inPlace: () => Promise<boolean>
  readonly close: () => Promise<void>
}

const O_DIRECTORY = constants.O_DIRECTORY ?? 0
const O_NOFOLLOW = constants.O_NOFOLLOW ?? 0
const OPEN_DIR = constants.O_RDONLY | O_DIRECTORY | O_NOFOLLOW

/** `/proc/self/fd` addresses a descriptor's directory by path on Linux; checked once. */
let procFd: boolean | undefined
const hasProcFd = (fd: number): boolean => {
  procFd ??= process.platform === "linux" && existsSync(`/proc/self/fd/${fd}`)
  return procFd
}

type Opened =
  | { readonly _tag: "Opened"; readonly dir: StoreDir }
  | {
      readonly _tag: "Refused"
      readonly problem: DataDirRefused["problem"]
      readonly stats?: { readonly uid: number; readonly mode: number }
    }
  | { readonly _tag: "Absent" }

/** Creates the directory `at` 0700 (exactly: the umask may have narrowed it) unless it exists. */
const makeDir = (at: string): Promise<void> =>
  fsp.mkdir(at, { mode: DIR_MODE }).then(
    () => fsp.chmod(at, DIR_MODE),
    (error: unknown) => {
      if (errorCode(error) !== "EEXIST") throw error
    }
  )

/** Opens the directory at `at` without following a link there, and checks that it is ours alone. */
const openDir = async (at: string, realPath: string, relative: string): Promise<Opened> => {
  let handle: fsp.FileHandle
  try {
    handle = await fsp.open(at, OPEN_DIR)
  } catch (error) {
    const code = errorCode(error)
    if (code === "ENOENT") return { _tag: "Absent" }
    if (code === "ELOOP") return { _tag: "Refused", problem: "Link" }
    if (code === "ENOTDIR") return { _tag: "Refused", problem: "NotADirectory" }
    throw error
  }
  const stats = await handle.stat()
  const problem = dirProblem(stats)
  if (problem !== undefined) {
    await handle.close()
    return { _tag: "Refused", problem, stats }
  }
  const fd = handle.fd
  const viaFd = hasProcFd(fd)
  const dir: StoreDir = {
    path: realPath,
    relative,
    entry: (name) => (viaFd ? `/proc/self/fd/${fd}/${name}` : path.join(realPath, name)),
    sync: () => handle.sync().catch(() => undefined),
    inPlace: async () => {
      const [now, there] = await Promise.all([handle.stat(), fsp.lstat(realPath).catch(() => undefined)])
      return there?.isDirectory() === true && there.ino === now.ino && there.dev === now.dev
    },
    close: () => handle.close().catch(() => undefined)
  }
  return { _tag: "Opened", dir }
}

/**
 * Opens one store's directory under the data directory (`tokens`, `keys`),
 * for as long as the scope lasts, once the data directory passed its checks
 * (`checkDataDir`: created 0700 when missing, else `DataDirRefused`, exit 2).
 */
export const openStoreDir = (
  dataDir: string,
  name: StoreDirName
): Effect.Effect<StoreDir, StoreFailure | DataDirRefused, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.flatMap(checkDataDir(dataDir, { create: true }), (root) =>
      Effect.tryPromise({
        try: async (): Promise<StoreDir | DataDirRefused> => {
          const sub = path.join(root, name)
          await makeDir(sub)
          const opened = await openDir(sub, sub, name)
          if (opened._tag === "Opened") return opened.dir
          if (opened._tag === "Absent")
            throw Object.assign(new Error("store directory vanished"), { code: "ENOENT" })
          return refusal(sub, opened.problem, opened.stats)
        },
        catch: (cause) => StoreFailure.io("open", cause)
      })
    ).pipe(Effect.flatMap((dir) => (dir instanceof DataDirRefused ? Effect.fail(dir) : Effect.succeed(dir)))),
    (dir) => Effect.promise(() => dir.close())
  )

/** What opening a directory inside the store found. */
export type Child = { readonly _tag: "Opened"; readonly dir: StoreDir } | { readonly _tag: "Absent" }

export interface ChildOptions {
  /** Create it 0700 first when missing. */
  readonly create: boolean
  readonly operation: StoreFailure["operation"]
  /** A listing skips a refused directory (it is logged) instead of failing. */
  readonly skipRefused?: boolean
}

/**
 * Opens the directory `name` inside `parent` (a provider's directory),
 * creating it 0700 first when `create` is set. A link there, or a directory
 * that is not ours alone, is refused with a `StoreFailure` (`Link`,
 * `Unsafe`) and logged with its store-relative name.
 */
export const openChild = (
  parent: StoreDir,
  name: string,
  options: ChildOptions
): Effect.Effect<Child, StoreFailure> =>
  Effect.tryPromise({
    try: async () => {
      const at = parent.entry(name)
      if (options.create) await makeDir(at)
      return openDir(at, path.join(parent.path, name), `${parent.relative}/${name}`)
    },
    catch: (cause) => StoreFailure.io(options.operation, cause)
  }).pipe(
    Effect.flatMap((opened): Effect.Effect<Child, StoreFailure> => {
      if (opened._tag !== "Refused") return Effect.succeed(opened)
      const reason = opened.problem === "Link" ? "Link" : "Unsafe"
      return Effect.logWarning("store directory refused").pipe(
        Effect.annotateLogs({ entry: `${parent.relative}/${name}`, problem: opened.problem }),
        Effect.zipRight(
          options.skipRefused === true
            ? Effect.succeed<Child>({ _tag: "Absent" })
            : Effect.fail(new StoreFailure({ operation: options.operation, reason }))
        )
      )
    })
  )

/** Runs `use` with the child directory open, and closes it after; `undefined` when it does not exist. */
export const withChild = <A, E>(
  parent: StoreDir,
  name: string,
  options: ChildOptions,
  use: (dir: StoreDir) => Effect.Effect<A, E>
): Effect.Effect<A | undefined, E | StoreFailure> =>
  Effect.acquireUseRelease(
    openChild(parent, name, options),
    (child) => (child._tag === "Opened" ? use(child.dir) : Effect.succeed(undefined)),
    (child) => (child._tag === "Opened" ? Effect.promise(() => child.dir.close()) : Effect.void)
  )
