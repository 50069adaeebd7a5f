import * as Schema from "effect/Schema"
import { type Explained, explain } from "./explained.js"

/** Why the server could not start listening (PROTOCOL.md §2). */
export const StartReason = Schema.Literal(
  "SocketDirUnusable",
  "SocketDirLink",
  "SocketDirNotADirectory",
  "SocketDirOwner",
  "SocketDirMode",
  "SocketPathTooLong",
  "StaleFile",
  "Listen",
  "SocketMode"
)
export type StartReason = typeof StartReason.Type

/**
 * Why the server refused to start (socket directory, path length, listen).
 * `subject` is the directory or socket path involved; `detail` what was
 * found there (an owner, a mode, a length, an error code).
 */
export class ServerStartError extends Schema.TaggedError<ServerStartError>()("ServerStartError", {
  reason: StartReason,
  subject: Schema.String,
  detail: Schema.optional(Schema.String),
  cause: Schema.optional(Schema.Defect)
}) {
  get explained(): Explained {
    return START_MESSAGES[this.reason](this.subject, this.detail ?? "")
  }

  override get message(): string {
    return explain(this.explained)
  }
}

const otherDir = "choose another with --socket-dir"

const START_MESSAGES: Record<StartReason, (subject: string, detail: string) => Explained> = {
  SocketDirUnusable: (dir, problem) => ({
    what: `cannot prepare socket directory ${dir}: ${problem}`,
    fix: `check that you may create it there, or ${otherDir}`
  }),
  SocketDirLink: (dir) => ({
    what: `socket directory ${dir} is a symbolic link`,
    fix: "give the real directory with --socket-dir"
  }),
  SocketDirNotADirectory: (dir) => ({
    what: `socket directory ${dir} exists but is not a directory`,
    fix: `remove it, or ${otherDir}`
  }),
  SocketDirOwner: (dir, owners) => ({
    what: `socket directory ${dir} is owned by ${owners}`,
    fix: `remove it (as its owner), or ${otherDir}`
  }),
  SocketDirMode: (dir, mode) => ({
    what: `socket directory ${dir} has mode ${mode}: group or others can reach the socket`,
    fix: `chmod 700 ${dir}`
  }),
  SocketPathTooLong: (socket, limit) => ({
    what: `socket path ${socket} is ${limit}`,
    fix: "use a shorter --socket-dir"
  }),
  StaleFile: (socket, code) => ({
    what: `cannot remove the stale file at ${socket} (${code})`,
    fix: `remove it yourself, or ${otherDir}`
  }),
  Listen: (socket, code) => ({
    what: `cannot listen on ${socket} (${code})`,
    fix: "check the socket directory with credproxy doctor --socket-dir DIR"
  }),
  SocketMode: (socket, code) => ({
    what: `cannot set mode 0600 on ${socket} (${code})`,
    fix: "check the socket directory with credproxy doctor --socket-dir DIR"
  })
}

/**
 * The data directory, or one of the store's directories in it, is not safe to
 * keep credentials in (PROTOCOL.md §22): another user owns it, group or
 * others may write to it, or it is not a real directory. Every command
 * refuses it (exit 2); the message names the directory and the fix.
 */
export class DataDirRefused extends Schema.TaggedError<DataDirRefused>()("DataDirRefused", {
  dir: Schema.String,
  problem: Schema.Literal("Owner", "Writable", "NotADirectory", "Link"),
  uid: Schema.optional(Schema.Number),
  mode: Schema.optional(Schema.Number)
}) {
  get explained(): Explained {
    return DATA_DIR_MESSAGES[this.problem](`data directory ${this.dir}`, this)
  }

  override get message(): string {
    return explain(this.explained)
  }
}

const otherDataDir = "or choose another with --data-dir"

const DATA_DIR_MESSAGES: Record<
  DataDirRefused["problem"],
  (
    dir: string,
    refused: { readonly uid?: number | undefined; readonly mode?: number | undefined }
  ) => Explained
> = {
  Owner: (dir, { uid }) => ({
    what: `${dir} is owned by uid ${uid}, not by this user`,
    fix: `chown it to yourself ${otherDataDir}`
  }),
  Writable: (dir, { mode }) => ({
    what: `${dir} has mode ${(mode ?? 0).toString(8)}: group or others may write to it`,
    fix: `chmod 700 it ${otherDataDir}`
  }),
  NotADirectory: (dir) => ({ what: `${dir} is not a directory`, fix: `remove it ${otherDataDir}` }),
  Link: (dir) => ({
    what: `${dir} is a symbolic link inside the store`,
    fix: "replace it with a real directory"
  })
}

/**
 * The keyring store (`--store keyring`) cannot be used, found when a command
 * opens it (docs/PROTOCOL.md §21): nothing answers (`Unreachable`: no Secret
 * Service on the session bus, or no bus), it refused the start-up check
 * (`Refused`: a locked collection or a denied prompt), it did not answer
 * within the keyring deadline (`Timeout`), or the keyring library has no
 * build for this platform (`Unsupported`). Every command exits 2 with the
 * message, which names the store and what to do.
 */
export class KeyringUnavailable extends Schema.TaggedError<KeyringUnavailable>()("KeyringUnavailable", {
  reason: Schema.Literal("Unreachable", "Refused", "Timeout", "Unsupported"),
  timeoutMs: Schema.Number
}) {
  get explained(): Explained {
    const fallback = "or choose the file store with --store file"
    const parts: Record<typeof this.reason, Explained> = {
      Unreachable: {
        what: "no keyring answers (on Linux: no Secret Service on the D-Bus session bus named by DBUS_SESSION_BUS_ADDRESS)",
        fix: `start your keyring daemon (e.g. gnome-keyring-daemon) in this session, ${fallback}`
      },
      Refused: {
        what: "the keyring refused access (its collection is locked, or the unlock prompt was denied)",
        fix: `unlock it (e.g. log in to your desktop session) and try again, ${fallback}`
      },
      Timeout: {
        what: `the keyring did not answer within ${this.timeoutMs / 1000} s`,
        fix: `check that its daemon is running and responsive, ${fallback}`
      },
      Unsupported: { what: "the keyring library has no build for this platform", fix: fallback }
    }
    const { what, fix } = parts[this.reason]
    return { what: `keyring store unavailable: ${what}`, fix }
  }

  override get message(): string {
    return explain(this.explained)
  }
}
