import * as Schema from "effect/Schema"

/** Bad arguments or input on the command line (exit status 2); `reason` says what is wrong and how to fix it. */
export class UsageError extends Schema.TaggedError<UsageError>()("UsageError", {
  reason: Schema.String
}) {
  override get message(): string {
    return this.reason
  }
}
