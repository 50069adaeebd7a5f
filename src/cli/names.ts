import * as Effect from "effect/Effect"
import { UsageError } from "../errors/usage.js"
import { isValidName, NAME_RULE } from "../protocol/names.js"

/** Checks a provider, bucket or key name given on the command line against the §8 rule. */
export const requireName = (value: string, what: string): Effect.Effect<string, UsageError> =>
  isValidName(value)
    ? Effect.succeed(value)
    : Effect.fail(new UsageError({ reason: `invalid ${what} "${value}": a name is ${NAME_RULE}` }))

/** A provider:bucket key from the command line, both names checked. */
export const requireTokenKey = (provider: string, bucket: string) =>
  Effect.all({ provider: requireName(provider, "provider"), bucket: requireName(bucket, "bucket") })
