import * as Schema from "effect/Schema"
import { MAX_NAME_LENGTH } from "./limits.js"

/**
 * The §8 name rule for providers, buckets and API key names. Names can reach
 * file paths, so this is a security rule; stores still encode names themselves.
 */
const NAME_PATTERN = /^[A-Za-z0-9_@+][A-Za-z0-9._@+-]{0,127}$/

export const NAME_RULE = `1-${MAX_NAME_LENGTH} characters of A-Z a-z 0-9 . _ - @ +, not starting with . or -`

export const isValidName = (value: string): boolean => NAME_PATTERN.test(value)

export const Name = Schema.String.pipe(
  Schema.filter((value) => isValidName(value), { message: () => `must be ${NAME_RULE}` }),
  Schema.annotations({ identifier: "Name" })
)

export const DEFAULT_BUCKET = "default"
