import * as Context from "effect/Context"
import * as Either from "effect/Either"
import { isValidName, NAME_RULE } from "../protocol/names.js"

/**
 * Which tokens and API keys the socket may touch (PROTOCOL.md §8). Two
 * independent parts, token patterns `provider[:bucket]` and key name patterns;
 * `*` matches any one name and is only ever a whole part. A part without
 * allow patterns allows everything; a deny pattern refuses what it matches,
 * whatever allows it. The policy can change while the server runs
 * (`credproxy policy`): reads always see the current rules.
 */
export interface AccessPolicyShape {
  readonly allowsToken: (provider: string, bucket: string) => boolean
  /** True when at least one bucket of the provider could be allowed. */
  readonly allowsProvider: (provider: string) => boolean
  /** True when every bucket of the provider is allowed (no need to look at buckets). */
  readonly allowsEveryBucket: (provider: string) => boolean
  readonly allowsKey: (name: string) => boolean
  /** The rules in force now. */
  readonly rules: () => PolicyRules
  /** Applies a change for the requests that follow; a bad pattern changes nothing. */
  readonly change: (change: PolicyChange) => Either.Either<PolicyRules, string>
}

export class AccessPolicy extends Context.Tag("credproxy/AccessPolicy")<AccessPolicy, AccessPolicyShape>() {}

/** The rules as patterns in their canonical text (`provider:bucket` with `*` for any, key names). */
export interface PolicyRules {
  readonly allow: ReadonlyArray<string>
  readonly deny: ReadonlyArray<string>
  readonly allowKeys: ReadonlyArray<string>
  readonly denyKeys: ReadonlyArray<string>
}

export type PolicyChangeKind = "allow" | "deny" | "allow-key" | "deny-key"

export interface PolicyChange {
  readonly kind: PolicyChangeKind
  readonly spec: string
}

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

const tokenText = (pattern: TokenPattern): string => `${pattern.provider}:${pattern.bucket}`

/** The rules for start-up allow patterns (already parsed), with nothing denied. */
export const initialRules = (
  tokenPatterns: ReadonlyArray<TokenPattern>,
  keyPatterns: ReadonlyArray<string>
): PolicyRules => ({
  allow: [...new Set(tokenPatterns.map(tokenText))],
  deny: [],
  allowKeys: [...new Set(keyPatterns)],
  denyKeys: []
})

const without = (list: ReadonlyArray<string>, item: string) => list.filter((entry) => entry !== item)
const withItem = (list: ReadonlyArray<string>, item: string) => (list.includes(item) ? list : [...list, item])

/**
 * `allow` takes back a deny of exactly that pattern and, when the allow list
 * is not empty (empty allows everything), adds it there; `deny` adds a deny
 * pattern and never touches the allow list (removing its last pattern would
 * allow everything). Deny patterns win, so an allow may leave a name still
 * refused by a broader deny; `rules()` shows why.
 */
export const applyChange = (rules: PolicyRules, change: PolicyChange): Either.Either<PolicyRules, string> => {
  const isKey = change.kind === "allow-key" || change.kind === "deny-key"
  const parsed = isKey ? parseKeyPattern(change.spec) : Either.map(parseTokenPattern(change.spec), tokenText)
  const [allowField, denyField] = isKey ? (["allowKeys", "denyKeys"] as const) : (["allow", "deny"] as const)
  return Either.map(parsed, (spec): PolicyRules => {
    if (change.kind === "deny" || change.kind === "deny-key") {
      return { ...rules, [denyField]: withItem(rules[denyField], spec) }
    }
    const allowed = rules[allowField]
    return {
      ...rules,
      [denyField]: without(rules[denyField], spec),
      [allowField]: allowed.length === 0 ? allowed : withItem(allowed, spec)
    }
  })
}

const matches = (pattern: string, value: string): boolean => pattern === WILDCARD || pattern === value

/** Patterns of rules this module wrote itself: they parse. */
const tokenPatternsOf = (specs: ReadonlyArray<string>): Array<TokenPattern> =>
  specs.flatMap((spec) =>
    Either.getOrElse(
      Either.map(parseTokenPattern(spec), (p) => [p]),
      () => []
    )
  )

/** The reads of a policy of `rules`: deny patterns win; an empty allow list allows everything. */
export const compilePolicy = (rules: PolicyRules): Omit<AccessPolicyShape, "rules" | "change"> => {
  const allow = tokenPatternsOf(rules.allow)
  const deny = tokenPatternsOf(rules.deny)
  const tokensOpen = allow.length === 0
  const keysOpen = rules.allowKeys.length === 0
  const denied = (provider: string, bucket: string) =>
    deny.some((p) => matches(p.provider, provider) && matches(p.bucket, bucket))
  return {
    allowsToken: (provider, bucket) =>
      (tokensOpen || allow.some((p) => matches(p.provider, provider) && matches(p.bucket, bucket))) &&
      !denied(provider, bucket),
    allowsProvider: (provider) =>
      (tokensOpen || allow.some((p) => matches(p.provider, provider))) &&
      !deny.some((p) => matches(p.provider, provider) && p.bucket === WILDCARD),
    allowsEveryBucket: (provider) =>
      (tokensOpen || allow.some((p) => matches(p.provider, provider) && p.bucket === WILDCARD)) &&
      !deny.some((p) => matches(p.provider, provider)),
    allowsKey: (name) =>
      (keysOpen || rules.allowKeys.some((p) => matches(p, name))) &&
      !rules.denyKeys.some((p) => matches(p, name))
  }
}

/** A policy fixed at `rules` that can change later; reads go through one indirection. */
export const makeAccessPolicy = (initial: PolicyRules): AccessPolicyShape => {
  let rules = initial
  let reads = compilePolicy(rules)
  return {
    allowsToken: (provider, bucket) => reads.allowsToken(provider, bucket),
    allowsProvider: (provider) => reads.allowsProvider(provider),
    allowsEveryBucket: (provider) => reads.allowsEveryBucket(provider),
    allowsKey: (name) => reads.allowsKey(name),
    rules: () => rules,
    change: (change) =>
      Either.map(applyChange(rules, change), (next) => {
        rules = next
        reads = compilePolicy(next)
        return next
      })
  }
}
