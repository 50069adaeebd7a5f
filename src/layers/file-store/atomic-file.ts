import { randomBytes } from "node:crypto"
import { constants, type Stats } from "node:fs"
import * as fsp from "node:fs/promises"
import * as path from "node:path"
import * as Effect from "effect/Effect"
import type { StoreFailure, StoreOperation } from "../../errors/errors.js"
import type { StoreDir } from "./store-dir.js"
import { isLinkAt, linkInTheWay, logLinkRefused, storeFailureOf } from "./store-links.js"

/**
 * File primitives of the file stores: a reader never sees a torn file, a
 * crash never leaves a half-written one in place, and everything is private
 * to the user (files 0600, directories 0700).
 */

/** Mode of every directory a store creates. */
export const DIR_MODE = 0o700
/** Mode of every file a store writes. */
export const FILE_MODE = 0o600

/** A temp file name for `name`: hidden (leading `.`) so listings skip it, and unguessable. */
export const tempNameFor = (name: string): string => `.${name}.${randomBytes(8).toString("hex")}.tmp`

const CREATE_NEW = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | (constants.O_NOFOLLOW ?? 0)

/**
 * Replaces `name` in `dir` atomically: write a temp file in the same
 * directory (exclusive create, never through a link), set its mode exactly,
 * fsync, close, rename over `name`, fsync the directory. A symbolic link
 * found at `name` refuses the write (`ELOOP`, PROTOCOL.md §22): it is never
 * replaced nor followed. The temp file is removed on failure. Resolves with
 * the stats of the written file (taken from its descriptor before the rename,
 * which keeps inode, size and mtime), so callers can remember exactly what
 * they wrote.
 */
export const writeFileAtomicAsync = async (
  dir: StoreDir,
  name: string,
  data: string | Uint8Array,
  mode: number = FILE_MODE
): Promise<Stats> => {
  const temp = dir.entry(tempNameFor(name))
  let handle: fsp.FileHandle | undefined
  try {
    handle = await fsp.open(temp, CREATE_NEW, mode)
    // open()'s mode is filtered by the umask; set it exactly.
    await handle.chmod(mode)
    await handle.writeFile(data)
    await handle.sync()
    const stats = await handle.stat()
    const open = handle
    handle = undefined
    await open.close()
    if (await isLinkAt(dir.entry(name))) throw linkInTheWay()
    await fsp.rename(temp, dir.entry(name))
    await dir.sync()
    return stats
  } catch (error) {
    await handle?.close().catch(() => undefined)
    await fsp.rm(temp, { force: true }).catch(() => undefined)
    throw error
  }
}

/**
 * {@link writeFileAtomicAsync} as an Effect; a failure is a `StoreFailure` for
 * `operation`, `Link` for a link at `name` (logged by its store-relative name).
 */
export const writeFileAtomic = (
  operation: StoreOperation,
  dir: StoreDir,
  name: string,
  data: string | Uint8Array,
  mode: number = FILE_MODE
): Effect.Effect<Stats, StoreFailure> =>
  logLinkRefused(
    Effect.tryPromise({
      try: () => writeFileAtomicAsync(dir, name, data, mode),
      catch: (cause) => storeFailureOf(operation, cause)
    }),
    `${dir.relative}/${name}`
  )

/**
 * Creates `dir` and missing parents with
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

/** A temp file this old was left by a writer that died (a write takes milliseconds). */
export const STALE_TEMP_FILE_MS = 60_000

const TEMP_FILE = /^\..+\.[0-9a-f]{16}\.tmp$/

/**
 * Removes temp files that a killed writer left behind in `dir`. They hold a
 * full token or key (mode 0600), so they are not left lying around. Only
 * regular files are removed; links are skipped. Best effort: errors are
 * ignored.
 */
export const removeStaleTempFiles = (dir: StoreDir, nowMs: number): Effect.Effect<void> =>
  Effect.promise(async () => {
    const entries = await fsp.readdir(dir.entry("."), { withFileTypes: true }).catch(() => [])
    for (const entry of entries) {
      if (!entry.isFile() || !TEMP_FILE.test(entry.name)) continue
      const full = dir.entry(entry.name)
      const stat = await fsp.lstat(full).catch(() => undefined)
      if (stat?.isFile() && nowMs - stat.mtimeMs > STALE_TEMP_FILE_MS) await fsp.unlink(full).catch(() => {})
    }
  })
