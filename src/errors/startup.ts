import * as Schema from "effect/Schema"

/**
 * Why the server refused to start (socket directory, path length, listen).
 * `reason` is a complete sentence for the user: what is wrong and what to do.
 */
export class ServerStartError extends Schema.TaggedError<ServerStartError>()("ServerStartError", {
  reason: Schema.String,
  cause: Schema.optional(Schema.Defect)
}) {
  override get message(): string {
    return this.reason
  }
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
  override get message(): string {
    const dir = `data directory ${this.dir}`
    const problems: Record<typeof this.problem, string> = {
      Owner: `${dir} is owned by uid ${this.uid}, not by this user; chown it to yourself or choose another with --data-dir`,
      Writable: `${dir} has mode ${(this.mode ?? 0).toString(8)}: group or others may write to it; chmod 700 it or choose another with --data-dir`,
      NotADirectory: `${dir} is not a directory; remove it or choose another with --data-dir`,
      Link: `${dir} is a symbolic link inside the store; replace it with a real directory`
    }
    return problems[this.problem]
  }
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
  override get message(): string {
    const fallback = "or choose the file store with --store file"
    const problems: Record<typeof this.reason, string> = {
      Unreachable: `no keyring answers (on Linux: no Secret Service on the D-Bus session bus named by DBUS_SESSION_BUS_ADDRESS); start your keyring daemon (e.g. gnome-keyring-daemon) in this session, ${fallback}`,
      Refused: `the keyring refused access (its collection is locked, or the unlock prompt was denied); unlock it (e.g. log in to your desktop session) and try again, ${fallback}`,
      Timeout: `the keyring did not answer within ${this.timeoutMs / 1000} s; check that its daemon is running and responsive, ${fallback}`,
      Unsupported: `the keyring library has no build for this platform; ${fallback}`
    }
    return `keyring store unavailable: ${problems[this.reason]}`
  }
}
