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
