import { constants } from "node:fs"
import * as fsp from "node:fs/promises"
import * as path from "node:path"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import { errorCode, type StoreFailure } from "../errors/errors.js"
import type { DataDirRefused } from "../errors/startup.js"
import { writeFileAtomic } from "../layers/file-store/atomic-file.js"
import { dirProblem } from "../layers/file-store/data-dir-check.js"
import { readAtMost } from "../layers/file-store/file-read.js"
import { openStoreDir } from "../layers/file-store/store-dir.js"
import { PROTOCOL_VERSIONS } from "../protocol/limits.js"
import { isRunning } from "./socket-path.js"

/**
 * The record a server on the file store keeps in its data directory while it
 * runs: `{dataDir}/servers/llxprt-cred-{pid}-{nonce}.json`, named after its
 * socket, holding its pid, socket path, start time and protocol version (no
 * secret). Written 0600 once the socket listens, removed when the server
 * stops; a server killed without a chance to clean up leaves it behind, and
 * the next server on the data directory removes it (its pid is gone). This
 * is how `credproxy doctor` finds the servers of a data directory.
 */

export const RUN_DIR = "servers"

export const RunRecord = Schema.Struct({
  pid: Schema.Int,
  socket: Schema.String,
  startedAt: Schema.String,
  protocolVersion: Schema.Int
})
export type RunRecord = typeof RunRecord.Type

const RECORD_NAME = /^llxprt-cred-(\d+)-[0-9a-f]{8}\.json$/
/** Records are a few hundred bytes; doctor reads at most this many of them. */
const MAX_RECORD_BYTES = 4096
const MAX_RECORDS = 64

const recordName = (socketPath: string): string => path.basename(socketPath).replace(/\.sock$/, ".json")

/** Records of servers whose pid no longer runs (ours by name; best effort). */
const removeStale = async (dir: { entry: (name: string) => string }, names: ReadonlyArray<string>) => {
  for (const name of names) {
    const match = RECORD_NAME.exec(name)
    if (match === null || isRunning(Number(match[1]))) continue
    await fsp.rm(dir.entry(name), { force: true }).catch(() => undefined)
  }
}

/**
 * Writes this server's record for as long as the scope lasts (removed when
 * it closes), and removes the records of servers that are gone.
 */
export const recordRun = (
  dataDir: string,
  socketPath: string
): Effect.Effect<void, StoreFailure | DataDirRefused, Scope.Scope> =>
  Effect.gen(function* () {
    const dir = yield* openStoreDir(dataDir, RUN_DIR)
    const names = yield* Effect.promise(() => fsp.readdir(dir.path).catch(() => [] as Array<string>))
    yield* Effect.promise(() => removeStale(dir, names))
    const startedAt = new Date(yield* Clock.currentTimeMillis).toISOString()
    const record: RunRecord = {
      pid: process.pid,
      socket: socketPath,
      startedAt,
      protocolVersion: PROTOCOL_VERSIONS.max
    }
    const name = recordName(socketPath)
    yield* Effect.acquireRelease(writeFileAtomic("save", dir, name, `${JSON.stringify(record)}\n`), () =>
      Effect.promise(() => fsp.rm(dir.entry(name), { force: true }).catch(() => undefined))
    )
  })

/** One entry of the records directory as `credproxy doctor` sees it. */
export type FoundRecord =
  | { readonly _tag: "Record"; readonly name: string; readonly record: RunRecord }
  | { readonly _tag: "Unreadable"; readonly name: string; readonly problem: string }

const decode = Schema.decodeUnknownEither(Schema.parseJson(RunRecord))
const READ_FLAGS = constants.O_RDONLY | (constants.O_NONBLOCK ?? 0) | (constants.O_NOFOLLOW ?? 0)

const readRecord = async (file: string): Promise<Either.Either<RunRecord, string>> => {
  let handle: fsp.FileHandle | undefined
  try {
    handle = await fsp.open(file, READ_FLAGS)
    if (!(await handle.stat()).isFile()) return Either.left("is not a regular file")
    const bytes = await readAtMost(handle, MAX_RECORD_BYTES)
    if (bytes === undefined) return Either.left("is too large")
    return Either.mapLeft(decode(bytes.toString("utf8")), () => "is not a run record")
  } catch (error) {
    return Either.left(`cannot be read (${errorCode(error) ?? "error"})`)
  } finally {
    await handle?.close().catch(() => undefined)
  }
}

/**
 * The run records in the data directory, read without creating or changing
 * anything: at most 64, none through a link. `undefined` when there is no
 * records directory; a `string` when it is not private (§22).
 */
export const readRunRecords = async (dataDir: string): Promise<Array<FoundRecord> | string | undefined> => {
  const dir = path.join(dataDir, RUN_DIR)
  const stats = await fsp.lstat(dir).catch(() => undefined)
  if (stats === undefined) return undefined
  const problem = stats.isSymbolicLink() ? "Link" : dirProblem(stats)
  if (problem !== undefined) return `${dir} is not private to this user (${problem})`
  const names = (await fsp.readdir(dir)).filter((name) => RECORD_NAME.test(name)).slice(0, MAX_RECORDS)
  return Promise.all(
    names.map(async (name): Promise<FoundRecord> => {
      const read = await readRecord(path.join(dir, name))
      return Either.isRight(read)
        ? { _tag: "Record", name, record: read.right }
        : { _tag: "Unreadable", name, problem: read.left }
    })
  )
}
