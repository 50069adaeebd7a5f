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
