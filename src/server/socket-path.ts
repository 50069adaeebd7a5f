import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Effect from "effect/Effect"
import { errorCode } from "../errors/errors.js"
import { ServerStartError } from "../errors/startup.js"

/** Unix socket paths are limited by `sun_path`: 108 bytes on Linux, 104 on macOS, including the final NUL. */
export const MAX_SOCKET_PATH_BYTES = process.platform === "darwin" ? 103 : 107

const currentUid = (): number => process.getuid?.() ?? -1

export const defaultSocketDir = (): string =>
  path.join(fs.realpathSync(os.tmpdir()), `llxprt-cred-${currentUid()}`)

/**
 * Why an existing socket directory is not fit for a socket (PROTOCOL.md §2),
 * from its `lstat`: a symbolic link, not a directory, another owner, or open
 * to group or other; `undefined` when it is fit. `credproxy doctor` asks the
 * same question without creating anything.
 */
export const socketDirProblem = (
  dir: string,
  stat: { readonly uid: number; readonly mode: number; isSymbolicLink(): boolean; isDirectory(): boolean }
): ServerStartError | undefined => {
  if (stat.isSymbolicLink()) return new ServerStartError({ reason: "SocketDirLink", subject: dir })
  if (!stat.isDirectory()) return new ServerStartError({ reason: "SocketDirNotADirectory", subject: dir })
  const uid = currentUid()
  if (uid >= 0 && stat.uid !== uid) {
    return new ServerStartError({
      reason: "SocketDirOwner",
      subject: dir,
      detail: `uid ${stat.uid}, not by this user (uid ${uid})`
    })
  }
  if ((stat.mode & 0o077) !== 0) {
    return new ServerStartError({
      reason: "SocketDirMode",
      subject: dir,
      detail: (stat.mode & 0o777).toString(8)
    })
  }
  return undefined
}

/**
 * Makes sure the socket directory exists and belongs to us alone (PROTOCOL.md
 * §2): created 0700 when missing; an existing one must be a real directory
 * (not a symlink), owned by this uid and closed to group and other.
 */
export const prepareSocketDir = (dir: string): Effect.Effect<string, ServerStartError> =>
  Effect.try({
    try: () => {
      const absolute = path.resolve(dir)
      if (!fs.existsSync(absolute)) fs.mkdirSync(absolute, { recursive: true, mode: 0o700 })
      return socketDirProblem(absolute, fs.lstatSync(absolute)) ?? absolute
    },
    catch: (cause) =>
      new ServerStartError({
        reason: "SocketDirUnusable",
        subject: dir,
        detail: errorCode(cause) ?? (cause as Error).message,
        cause
      })
  }).pipe(
    Effect.flatMap((checked) =>
      typeof checked === "string" ? Effect.succeed(checked) : Effect.fail(checked)
    )
  )

/** The longest name a server gives its socket (`pid` up to 7 digits, the most Linux hands out). */
export const longestSocketName = "llxprt-cred-4194304-00000000.sock"

/** Why `socketPath` cannot be a Unix socket's path on this platform, or `undefined` when it can. */
export const socketPathProblem = (socketPath: string): ServerStartError | undefined => {
  const bytes = Buffer.byteLength(socketPath)
  return bytes > MAX_SOCKET_PATH_BYTES
    ? new ServerStartError({
        reason: "SocketPathTooLong",
        subject: socketPath,
        detail: `${bytes} bytes; Unix socket paths are limited to ${MAX_SOCKET_PATH_BYTES} bytes on ${process.platform}`
      })
    : undefined
}

/** `llxprt-cred-{pid}-{nonce}.sock` with 4 random bytes as the nonce, checked against the path limit. */
export const chooseSocketPath = (dir: string): Effect.Effect<string, ServerStartError> => {
  const file = path.join(dir, `llxprt-cred-${process.pid}-${crypto.randomBytes(4).toString("hex")}.sock`)
  const problem = socketPathProblem(file)
  return problem === undefined ? Effect.succeed(file) : Effect.fail(problem)
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
