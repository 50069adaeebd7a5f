import * as Either from "effect/Either"
import { describe, expect, it } from "vitest"
import {
  initialRules,
  makeAccessPolicy,
  parseKeyPattern,
  parseTokenPattern
} from "../src/services/AccessPolicy.js"

const policyOf = (allow: Array<string>, allowKeys: Array<string> = []) =>
  makeAccessPolicy(
    initialRules(
      allow.map((spec) => Either.getOrThrow(parseTokenPattern(spec))),
      allowKeys.map((spec) => Either.getOrThrow(parseKeyPattern(spec)))
    )
  )

describe("the access policy and its live changes (§8)", () => {
  it("a deny wins over the allow list, and an allow of the same pattern takes it back", () => {
    const policy = policyOf([])
    expect(policy.allowsToken("anthropic", "default")).toBe(true)
    expect(Either.isRight(policy.change({ kind: "deny", spec: "anthropic" }))).toBe(true)
    expect(policy.allowsToken("anthropic", "work")).toBe(false)
    expect(policy.allowsProvider("anthropic")).toBe(false)
    expect(policy.allowsToken("openai", "default")).toBe(true)
    expect(policy.rules()).toEqual({ allow: [], deny: ["anthropic:*"], allowKeys: [], denyKeys: [] })
    policy.change({ kind: "allow", spec: "anthropic:*" })
    expect(policy.allowsToken("anthropic", "work")).toBe(true)
    // An empty allow list stays empty: everything is allowed again, nothing was narrowed.
    expect(policy.rules()).toEqual({ allow: [], deny: [], allowKeys: [], denyKeys: [] })
  })

  it("an allow widens a non-empty allow list; a deny never removes allow patterns", () => {
    const policy = policyOf(["anthropic:work"])
    expect(policy.allowsToken("openai", "default")).toBe(false)
    policy.change({ kind: "allow", spec: "openai" })
    expect(policy.allowsToken("openai", "default")).toBe(true)
    policy.change({ kind: "deny", spec: "anthropic:work" })
    expect(policy.allowsToken("anthropic", "work")).toBe(false)
    // Removing the last allow pattern would allow everything: the deny stands beside it instead.
    expect(policy.rules().allow).toEqual(["anthropic:work", "openai:*"])
    expect(policy.allowsToken("gemini", "default")).toBe(false)
  })

  it("a bucket-level deny leaves the provider listable but not every bucket", () => {
    const policy = policyOf([])
    policy.change({ kind: "deny", spec: "anthropic:work" })
    expect(policy.allowsProvider("anthropic")).toBe(true)
    expect(policy.allowsEveryBucket("anthropic")).toBe(false)
    expect(policy.allowsToken("anthropic", "default")).toBe(true)
    // An allow of a narrower pattern does not take back a broader deny: deny wins.
    policy.change({ kind: "deny", spec: "gemini" })
    policy.change({ kind: "allow", spec: "gemini:home" })
    expect(policy.allowsToken("gemini", "home")).toBe(false)
  })

  it("keys: deny and allow-key likewise; a bad pattern changes nothing and says why", () => {
    const policy = policyOf([], ["openai", "groq"])
    policy.change({ kind: "deny-key", spec: "openai" })
    expect(policy.allowsKey("openai")).toBe(false)
    expect(policy.allowsKey("groq")).toBe(true)
    policy.change({ kind: "allow-key", spec: "openai" })
    expect(policy.allowsKey("openai")).toBe(true)
    const before = policy.rules()
    const bad = policy.change({ kind: "deny", spec: "a:b:c" })
    expect(bad).toEqual(Either.left('invalid token pattern "a:b:c": expected provider[:bucket]'))
    expect(Either.isLeft(policy.change({ kind: "allow-key", spec: "../x" }))).toBe(true)
    expect(policy.rules()).toBe(before)
  })
})
