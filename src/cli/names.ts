import * as Effect from "effect/Effect"
import { UsageError } from "../errors/usage.js"
import { isValidName } from "../protocol/names.js"

/**
 * Checks a provider, bucket or key name given on the command line against the
 * §8 rule; `subject` is the argument or option it came from (`PROVIDER`, `--bucket`).
 */
export const requireName = (value: string, subject: string): Effect.Effect<string, UsageError> =>
  isValidName(value)
    ? Effect.succeed(value)
    : Effect.fail(new UsageError({ reason: "InvalidName", subject, detail: value }))

/** A provider:bucket key from the command line, both names checked. */
export const requireTokenKey = (provider: string, bucket: string) =>
  Effect.all({ provider: requireName(provider, "PROVIDER"), bucket: requireName(bucket, "--bucket") })
