import type { Dirent } from "node:fs"
import * as fsp from "node:fs/promises"
import { errorCode, StoreFailure } from "../../errors/errors.js"

/**
 * Listing a store directory without letting a large one cost the others
 * (§22): entries are read one by one (`opendir`) and at most `limit` of them;
 * links are never counted as files or directories. A directory that does not
 * exist lists nothing.
 */
export const readEntries = async (
  dir: string,
  limit: number,
  keep: (entry: Dirent) => boolean
): Promise<Array<Dirent>> => {
  let handle: import("node:fs").Dir
  try {
    handle = await fsp.opendir(dir)
  } catch (error) {
    const code = errorCode(error)
    if (code === "ENOENT" || code === "ENOTDIR") return []
    throw error
  }
  const kept: Array<Dirent> = []
  try {
    let read = 0
    for (let entry = await handle.read(); entry !== null && read < limit; entry = await handle.read()) {
      read++
      if (keep(entry)) kept.push(entry)
    }
  } finally {
    await handle.close().catch(() => undefined)
  }
  return kept
}

/** A failure to list a directory. */
export const listFailure = (cause: unknown): StoreFailure => StoreFailure.io("list", cause)
