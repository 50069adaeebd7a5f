import { constants, type Stats } from "node:fs"
import * as fsp from "node:fs/promises"
import { errorCode } from "../../errors/errors.js"
import { MAX_VALUE_BYTES } from "../../services/TokenStore.js"
import { ABSENT, type Stamp, type StoreRead, sameStamp } from "../store-cache/stamp.js"
import { stampOf } from "./file-stamp.js"

/**
 * One bounded look at a file of the store (PROTOCOL.md §22): `lstat` first (a
 * link is reported, never followed), then, only when the stamp changed, a
 * read of at most MAX_FILE_BYTES through a descriptor opened `O_NOFOLLOW`.
 */

/** Larger files are refused, and never read whole (the stores' MAX_VALUE_BYTES). */
export const MAX_FILE_BYTES = MAX_VALUE_BYTES

// O_NONBLOCK keeps a FIFO planted in place of a file from hanging the open; O_NOFOLLOW refuses a link.
const READ_FLAGS = constants.O_RDONLY | (constants.O_NONBLOCK ?? 0) | (constants.O_NOFOLLOW ?? 0)

const SAME: StoreRead = { _tag: "Same" }
const TOO_LARGE: StoreRead = { _tag: "Refused", reason: "TooLarge" }
const NOT_A_FILE: StoreRead = { _tag: "Refused", reason: "NotAFile" }

/**
 * The contents of `handle` from its start, or `undefined` once more than
 * `limit` bytes turn up: at most `limit + 1` bytes are ever read, so a file
 * that grows after its size was checked is not loaded whole either.
 */
export const readAtMost = async (
  handle: Pick<fsp.FileHandle, "read">,
  limit: number
): Promise<Buffer | undefined> => {
  const buffer = Buffer.allocUnsafe(limit + 1)
  let filled = 0
  for (;;) {
    const { bytesRead } = await handle.read(buffer, filled, buffer.length - filled, filled)
    if (bytesRead === 0) return buffer.subarray(0, filled)
    filled += bytesRead
    if (filled > limit) return undefined
  }
}

/** The file's stats without following a link; `undefined` when it does not exist. */
const lstatOrAbsent = async (file: string): Promise<Stats | undefined> => {
  try {
    return await fsp.lstat(file)
  } catch (error) {
    if (errorCode(error) === "ENOENT") return undefined
    throw error
  }
}

/** Reads the regular file open in `handle`, with the stamp of that very descriptor, so stamp and contents agree. */
const readOpened = async (handle: fsp.FileHandle): Promise<StoreRead> => {
  const opened = await handle.stat()
  if (!opened.isFile()) return NOT_A_FILE
  if (opened.size > MAX_FILE_BYTES) return TOO_LARGE
  const contents = await readAtMost(handle, MAX_FILE_BYTES)
  if (contents === undefined) return TOO_LARGE
  return { _tag: "Read", stamp: stampOf(opened), text: contents.toString("utf8"), bytes: contents.length }
}

/**
 * Looks at `file`: `Same` when its stamp is still `before`, its new stamp when
 * it is absent or a link, its contents when it changed, or a refusal when it
 * is not a regular file or is larger than MAX_FILE_BYTES.
 */
export const readFileIfChanged = async (file: string, before: Stamp | undefined): Promise<StoreRead> => {
  const stats = await lstatOrAbsent(file)
  if (stats === undefined) return { _tag: "Stamp", stamp: ABSENT }
  if (stats.isSymbolicLink()) return { _tag: "Stamp", stamp: { _tag: "Link", ino: stats.ino } }
  if (!stats.isFile()) return NOT_A_FILE
  if (before !== undefined && sameStamp(before, stampOf(stats))) return SAME
  let handle: fsp.FileHandle
  try {
    handle = await fsp.open(file, READ_FLAGS)
  } catch (error) {
    const code = errorCode(error)
    if (code === "ENOENT") return { _tag: "Stamp", stamp: ABSENT }
    if (code === "ELOOP") return { _tag: "Stamp", stamp: { _tag: "Link", ino: 0 } }
    throw error
  }
  try {
    return await readOpened(handle)
  } finally {
    await handle.close().catch(() => undefined)
  }
}
