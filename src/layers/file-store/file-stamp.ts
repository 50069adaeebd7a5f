import type { Stats } from "node:fs"

/**
 * What the disk said about a file the last time the store looked: absent, a
 * symbolic link (never followed, it reads as absent), or a regular file known
 * by its inode, size and mtime. The stores always replace files by rename,
 * which gives a new inode, so their writes always change the stamp; only an
 * in-place rewrite by a foreign tool that keeps the size within one
 * file-system timestamp tick could go unnoticed.
 */
export type Stamp =
  | { readonly _tag: "Absent" }
  | { readonly _tag: "Link"; readonly ino: number }
  | { readonly _tag: "File"; readonly ino: number; readonly size: number; readonly mtimeMs: number }

export const ABSENT: Stamp = { _tag: "Absent" }

export const stampOf = (stats: Stats): Stamp => ({
  _tag: "File",
  ino: stats.ino,
  size: stats.size,
  mtimeMs: stats.mtimeMs
})

export const sameStamp = (a: Stamp, b: Stamp): boolean => {
  switch (a._tag) {
    case "Absent":
      return b._tag === "Absent"
    case "Link":
      return b._tag === "Link" && a.ino === b.ino
    case "File":
      return b._tag === "File" && a.ino === b.ino && a.size === b.size && a.mtimeMs === b.mtimeMs
  }
}
