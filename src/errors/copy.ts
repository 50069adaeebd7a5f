import * as Schema from "effect/Schema"

/**
 * `credproxy store copy` read a copy back from the target store and found it
 * different from the source (or gone): the source is left as it was, even
 * with `--move` (exit 1). `what` names the token (`provider:bucket`) or key.
 */
export class CopyNotVerified extends Schema.TaggedError<CopyNotVerified>()("CopyNotVerified", {
  kind: Schema.Literal("token", "key"),
  what: Schema.String
}) {
  override get message(): string {
    return `the copy of ${this.kind} ${this.what} read back different from the source; the source is left as it was`
  }
}
