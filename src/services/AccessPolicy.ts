import * as Context from "effect/Context"
import * as Either from "effect/Either"
import { isValidName, NAME_RULE } from "../protocol/names.js"

/**
 * Which tokens and API keys the socket may touch (PROTOCOL.md §8). Two
 * independent parts, token patterns `provider[:bucket]` and key name patterns;
 * `*` matches any one name and is only ever a whole part. A part without
 * patterns allows everything.
 */
export interface AccessPolicyShape {
  readonly allowsToken: (provider: string, bucket: string) => boolean
  /** True when at least one bucket of the provider could be allowed. */
  readonly allowsProvider: (provider: string) => boolean
  /** True when every bucket of the provider is allowed (no need to look at buckets). */
  readonly allowsEveryBucket: (provider: string) => boolean
  readonly allowsKey: (name: string) => boolean
}

export class AccessPolicy extends Context.Tag("credproxy/AccessPolicy")<AccessPolicy, AccessPolicyShape>() {}

const WILDCARD = "*"

export interface TokenPattern {
  readonly provider: string
  readonly bucket: string
}

const parsePart = (part: string, what: string, spec: string): Either.Either<string, string> =>
  part === WILDCARD || isValidName(part)
    ? Either.right(part)
    : Either.left(`invalid ${what} in "${spec}": use * or a name of ${NAME_RULE}`)

/** Parses `provider[:bucket]`; a missing bucket part means every bucket. */
export const parseTokenPattern = (spec: string): Either.Either<TokenPattern, string> => {
  const parts = spec.split(":")
  if (parts.length > 2) return Either.left(`invalid token pattern "${spec}": expected provider[:bucket]`)
  return Either.all({
    provider: parsePart(parts[0]!, "provider", spec),
    bucket: parsePart(parts[1] ?? WILDCARD, "bucket", spec)
  })
}

export const parseKeyPattern = (spec: string): Either.Either<string, string> =>
  parsePart(spec, "key name", spec)

const matches = (pattern: string, value: string): boolean => pattern === WILDCARD || pattern === value

/** The policy for the given patterns; empty lists allow everything. */
export const makeAccessPolicy = (
  tokenPatterns: ReadonlyArray<TokenPattern>,
  keyPatterns: ReadonlyArray<string>
): AccessPolicyShape => {
  const tokensOpen = tokenPatterns.length === 0
  const keysOpen = keyPatterns.length === 0
  return {
    allowsToken: (provider, bucket) =>
      tokensOpen || tokenPatterns.some((p) => matches(p.provider, provider) && matches(p.bucket, bucket)),
    allowsProvider: (provider) => tokensOpen || tokenPatterns.some((p) => matches(p.provider, provider)),
    allowsEveryBucket: (provider) =>
      tokensOpen || tokenPatterns.some((p) => matches(p.provider, provider) && p.bucket === WILDCARD),
    allowsKey: (name) => keysOpen || keyPatterns.some((p) => matches(p, name))
  }
}
