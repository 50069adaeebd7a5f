import type { Stats } from "node:fs"
import type { Stamp } from "../store-cache/stamp.js"

/** A regular file's stamp (`store-cache/stamp.ts`): its inode, size and mtime. */
export const stampOf = (stats: Stats): Stamp => ({
  _tag: "File",
  ino: stats.ino,
  size: stats.size,
  mtimeMs: stats.mtimeMs
})
