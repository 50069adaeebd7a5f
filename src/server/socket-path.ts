import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import { ServerStartError } from "../errors/startup.js"

/** Unix socket paths are limited by `sun_path`: 108 bytes on Linux, 104 on macOS, including the final NUL. */
export const MAX_SOCKET_PATH_BYTES = process.platform === "darwin" ? 103 : 107

const currentUid = (): number => process.getuid?.() ?? -1

export const defaultSocketDir = (): string =>
  path.join(fs.realpathSync(os.tmpdir()), `llxprt-cred-${currentUid()}`)

/**
 * Makes sure the socket directory exists and belongs to us alone (PROTOCOL.md
 * §2): created 0700 when missing; an existing one must be a real directory
 * (not a symlink), owned by this uid and closed to group and other.
 */
export const prepareSocketDir = (
  dir: string,
  what = "socket directory"
): Effect.Effect<string, ServerStartError> =>
  Effect.try({
    try: () => checkSocketDir(path.resolve(dir), what),
    catch: (cause) =>
      new ServerStartError({
        reason: `cannot prepare ${what} ${dir}: ${(cause as Error).message}`,
        cause
      })
  }).pipe(
    Effect.flatMap(
      Either.match({
        onLeft: (reason) => Effect.fail(new ServerStartError({ reason })),
        onRight: Effect.succeed
      })
    )
  )

const checkSocketDir = (absolute: string, what: string): Either.Either<string, string> => {
  if (!fs.existsSync(absolute)) fs.mkdirSync(absolute, { recursive: true, mode: 0o700 })
  const stat = fs.lstatSync(absolute)
  if (stat.isSymbolicLink())
    return Either.left(`${what} ${absolute} is a symbolic link; give the real directory instead`)
  if (!stat.isDirectory()) return Either.left(`${what} ${absolute} exists but is not a directory`)
  const uid = currentUid()
  const choose = what === "socket directory" ? "remove it or choose another with --socket-dir" : "remove it"
  if (uid >= 0 && stat.uid !== uid)
    return Either.left(
      `${what} ${absolute} is owned by uid ${stat.uid}, not by this user (uid ${uid}); ${choose}`
    )
  if ((stat.mode & 0o077) !== 0)
    return Either.left(
      `${what} ${absolute} has mode ${(stat.mode & 0o777).toString(8)}; it must not be accessible to group or other (chmod 700 it)`
    )
  return Either.right(absolute)
}

/** `llxprt-cred-{pid}-{nonce}.sock` with 4 random bytes as the nonce, checked against the path limit. */
export const chooseSocketPath = (dir: string): Effect.Effect<string, ServerStartError> => {
  const file = path.join(dir, `llxprt-cred-${process.pid}-${crypto.randomBytes(4).toString("hex")}.sock`)
  const bytes = Buffer.byteLength(file)
  return bytes > MAX_SOCKET_PATH_BYTES
    ? Effect.fail(
        new ServerStartError({
          reason: `socket path ${file} is ${bytes} bytes; Unix socket paths are limited to ${MAX_SOCKET_PATH_BYTES} bytes on ${process.platform}. Use a shorter --socket-dir`
        })
      )
    : Effect.succeed(file)
}

/** The sockets a server makes in the socket directory: this protocol's, and the egress listener's. */
const SERVER_SOCKET = /^llxprt-(?:cred|egress)-(\d+)-[0-9a-f]{8}\.sock$/

/** Whether a process with this pid runs (as any user). */
export const isRunning = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    // EPERM: it runs, as another user.
    return (error as NodeJS.ErrnoException).code === "EPERM"
  }
}

/**
 * Removes the sockets that servers killed without a chance to clean up
 * (SIGKILL, a crash) left in `dir` (PROTOCOL.md §22): ours by name (`names`,
 * whose first group is the pid) and owner,
 * sockets only, and only when the pid in the name is not a running process.
 * Best effort; answers how many were removed.
 */
export const removeStaleSockets = (dir: string, names: RegExp = SERVER_SOCKET): Effect.Effect<number> =>
  Effect.try(() => {
    const uid = currentUid()
    let removed = 0
    for (const name of fs.readdirSync(dir)) {
      const match = names.exec(name)
      if (match === null) continue
      const pid = Number(match[1])
      if (pid === process.pid || isRunning(pid)) continue
      const file = path.join(dir, name)
      try {
        const stat = fs.lstatSync(file)
        if (!stat.isSocket() || (uid >= 0 && stat.uid !== uid)) continue
        fs.unlinkSync(file)
        removed++
      } catch {
        // Gone meanwhile, or not ours to remove.
      }
    }
    return removed
  }).pipe(Effect.orElseSucceed(() => 0))
