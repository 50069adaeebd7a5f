import { randomBytes } from "node:crypto"
import type { Stats } from "node:fs"
import * as fsp from "node:fs/promises"
import * as path from "node:path"
import * as Effect from "effect/Effect"
import { StoreFailure, type StoreOperation } from "../../errors/errors.js"

/**
 * File primitives of the file stores: a reader never sees a torn file, a
 * crash never leaves a half-written one in place, and everything is private
 * to the user (files 0600, directories 0700).
 */

/** Mode of every directory a store creates. */
export const DIR_MODE = 0o700
/** Mode of every file a store writes. */
export const FILE_MODE = 0o600

/** The temp file name next to `file`: hidden (leading `.`) so listings skip it. */
export const tempPathFor = (file: string): string =>
  path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(8).toString("hex")}.tmp`)

/** Flushes a directory entry change (the rename); not every platform/file system allows it, so errors are ignored. */
const syncDirectory = async (dir: string): Promise<void> => {
  const handle = await fsp.open(dir, "r").catch(() => undefined)
  if (handle === undefined) return
  await handle.sync().catch(() => undefined)
  await handle.close().catch(() => undefined)
}

/**
 * Promise form of {@link writeFileAtomic}. Resolves with the stats of the
 * written file (taken from the open descriptor before the rename, which keeps
 * inode, size and mtime), so callers can remember exactly what they wrote.
 */
export const writeFileAtomicAsync = async (
  file: string,
  data: string | Uint8Array,
  mode: number = FILE_MODE
): Promise<Stats> => {
  const temp = tempPathFor(file)
  let handle: fsp.FileHandle | undefined
  try {
    handle = await fsp.open(temp, "wx", mode)
    // open()'s mode is filtered by the umask; set it exactly.
    await handle.chmod(mode)
    await handle.writeFile(data)
    await handle.sync()
    const stats = await handle.stat()
    const open = handle
    handle = undefined
    await open.close()
    await fsp.rename(temp, file)
    await syncDirectory(path.dirname(file))
    return stats
  } catch (error) {
    await handle?.close().catch(() => undefined)
    await fsp.rm(temp, { force: true }).catch(() => undefined)
    throw error
  }
}

/**
 * Replaces `file` atomically: write a temp file in the same directory (mode
 * `mode`, exclusive create), fsync, close, rename over `file`, fsync the
 * directory. The temp file is removed on failure.
 */
export const writeFileAtomic = (
  operation: StoreOperation,
  file: string,
  data: string | Uint8Array,
  mode: number = FILE_MODE
): Effect.Effect<Stats, StoreFailure> =>
  Effect.tryPromise({
    try: () => writeFileAtomicAsync(file, data, mode),
    catch: (cause) => StoreFailure.io(operation, cause)
  })

/**
 * Promise form of {@link ensureDir}: creates `dir` and missing parents with
 * mode 0700 and chmods exactly the directories it created to 0700 (the
 * umask may have narrowed them). Directories that already existed (a user's
 * own data directory, `~/.local/share`, ...) are left as they are.
 */
export const ensureDirAsync = async (dir: string): Promise<void> => {
  const target = path.resolve(dir)
  const firstCreated = await fsp.mkdir(target, { recursive: true, mode: DIR_MODE })
  if (firstCreated === undefined) return
  const top = path.resolve(firstCreated)
  let current = target
  for (;;) {
    await fsp.chmod(current, DIR_MODE)
    if (current === top) return
    const parent = path.dirname(current)
    if (parent === current) return
    current = parent
  }
}

/** Makes sure `dir` exists; see {@link ensureDirAsync}. */
export const ensureDir = (operation: StoreOperation, dir: string): Effect.Effect<void, StoreFailure> =>
  Effect.tryPromise({
    try: () => ensureDirAsync(dir),
    catch: (cause) => StoreFailure.io(operation, cause)
  })

/** A temp file this old was left by a writer that died (a write takes milliseconds). */
export const STALE_TEMP_FILE_MS = 60_000

const TEMP_FILE = /^\..+\.[0-9a-f]{16}\.tmp$/

/**
 * Removes temp files that a killed writer left behind in `dir` and, with
 * `depth` 2, in its subdirectories. They hold a full token or key (mode 0600),
 * so they are not left lying around. Best effort: errors are ignored.
 */
export const removeStaleTempFiles = (dir: string, depth: 1 | 2, nowMs: number): Effect.Effect<void> =>
  Effect.promise(async () => {
    const sweep = async (current: string, level: number): Promise<void> => {
      const entries = await fsp.readdir(current, { withFileTypes: true }).catch(() => [])
      for (const entry of entries) {
        const full = path.join(current, entry.name)
        if (entry.isDirectory() && level < depth && !entry.name.startsWith(".")) await sweep(full, level + 1)
        else if (entry.isFile() && TEMP_FILE.test(entry.name)) {
          const stat = await fsp.stat(full).catch(() => undefined)
          if (stat !== undefined && nowMs - stat.mtimeMs > STALE_TEMP_FILE_MS)
            await fsp.unlink(full).catch(() => {})
        }
      }
    }
    await sweep(dir, 1)
  })
