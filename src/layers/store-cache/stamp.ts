/**
 * What the backing store said about an entry the last time a store looked,
 * so a later look can tell "unchanged" without decoding it again: absent, a
 * symbolic link (file store: never followed, it reads as absent), a regular
 * file known by its inode, size and mtime (file store), or a value known by
 * its digest (keyring store, whose entries have no metadata to compare).
 *
 * The file stores always replace files by rename, which gives a new inode, so
 * their writes always change the stamp; only an in-place rewrite by a foreign
 * tool that keeps the size within one file-system timestamp tick could go
 * unnoticed.
 */
export type Stamp =
  | { readonly _tag: "Absent" }
  | { readonly _tag: "Link"; readonly ino: number }
  | { readonly _tag: "File"; readonly ino: number; readonly size: number; readonly mtimeMs: number }
  | { readonly _tag: "Value"; readonly digest: string; readonly size: number }

export const ABSENT: Stamp = { _tag: "Absent" }

export const sameStamp = (a: Stamp, b: Stamp): boolean => {
  switch (a._tag) {
    case "Absent":
      return b._tag === "Absent"
    case "Link":
      return b._tag === "Link" && a.ino === b.ino
    case "File":
      return b._tag === "File" && a.ino === b.ino && a.size === b.size && a.mtimeMs === b.mtimeMs
    case "Value":
      return b._tag === "Value" && a.digest === b.digest
  }
}

/** What one look at an entry found (`Same`: its stamp is still the one given). */
export type StoreRead =
  | { readonly _tag: "Same" }
  | { readonly _tag: "Stamp"; readonly stamp: Stamp }
  | { readonly _tag: "Refused"; readonly reason: "NotAFile" | "TooLarge" }
  | { readonly _tag: "Read"; readonly stamp: Stamp; readonly text: string; readonly bytes: number }
