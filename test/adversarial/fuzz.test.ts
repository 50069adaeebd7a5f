import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import fc from "fast-check"
import * as FileKeyStorage from "../../src/layers/FileKeyStorage.js"
import * as FileTokenStore from "../../src/layers/FileTokenStore.js"
import { encodeFrame } from "../../src/protocol/frame.js"
import { answerProblems, MAX_PAYLOAD, RawClient } from "../support/adversarial.js"
import { FrameClient, type Json } from "../support/frame-client.js"
import { startServer, type TestServer } from "../support/server.js"
import { splitAt } from "../support/split.js"
import { poll } from "../support/until.js"

/**
 * Fuzzing a live server (real socket, real file store) with fast-check:
 * random bytes, random JSON, random handshakes and schema-shaped requests
 * with mutated fields. Whatever arrives, the server keeps serving a
 * well-behaved client, answers only in the protocol's shape, never with a
 * refresh token, a secret outside the access policy or a stack trace, and
 * when every client is gone it holds no connection, request or deadline.
 *
 * Each run half-closes its connection and waits for the server to close it:
 * by then every answer the server will ever send has arrived, so the checks
 * do not depend on timing.
 */

// The policy: anthropic:default and the key openai. Everything else stored is off limits.
const ALLOW = ["anthropic:default"]
const ALLOW_KEYS = ["openai"]

const REFRESH = "rt-FUZZ-allowed-9d1c44e0"
const ALLOWED_ACCESS = "at-FUZZ-allowed-27b1"
const ALLOWED_KEY = "sk-FUZZ-openai-6a0f"
const FORBIDDEN_KEY = "sk-FUZZ-secret-key-e5c2b7"
const WORK_ACCESS = "at-FUZZ-work-forbidden-41aa"
const WORK_REFRESH = "rt-FUZZ-work-forbidden-73f0"
const GEMINI_ACCESS = "at-FUZZ-gemini-forbidden-0bd9"
const GEMINI_REFRESH = "rt-FUZZ-gemini-forbidden-c38e"

/** Values that must never appear in any answer. */
const FORBIDDEN = [REFRESH, FORBIDDEN_KEY, WORK_ACCESS, WORK_REFRESH, GEMINI_ACCESS, GEMINI_REFRESH] as const

const OPS = [
  "get_token",
  "save_token",
  "remove_token",
  "list_providers",
  "list_buckets",
  "get_bucket_stats",
  "get_api_key",
  "has_api_key",
  "list_api_keys",
  "refresh_token",
  "oauth_initiate",
  "oauth_exchange",
  "oauth_poll",
  "oauth_cancel"
] as const

const HANDSHAKE = encodeFrame(
  JSON.stringify({ v: 1, op: "handshake", payload: { minVersion: 1, maxVersion: 1 } })
)

const seed = (server: TestServer) =>
  Effect.gen(function* () {
    const tokens = yield* FileTokenStore.make(server.dataDir)
    const token = (access_token: string, refresh_token: string) => ({
      access_token,
      refresh_token,
      expiry: 4_102_444_800,
      token_type: "Bearer",
      id_token: `id-${access_token}`
    })
    yield* tokens.save({ provider: "anthropic", bucket: "default" }, token(ALLOWED_ACCESS, REFRESH))
    yield* tokens.save({ provider: "anthropic", bucket: "work" }, token(WORK_ACCESS, WORK_REFRESH))
    yield* tokens.save({ provider: "gemini", bucket: "default" }, token(GEMINI_ACCESS, GEMINI_REFRESH))
    const keys = yield* FileKeyStorage.make(server.dataDir)
    yield* keys.set("openai", ALLOWED_KEY)
    yield* keys.set("secret-key", FORBIDDEN_KEY)
  }).pipe(Effect.orDie)

/** Checks every answer one fuzz connection received. */
const expectSafe = (client: RawClient): Array<Json> => {
  expect(client.violations).toEqual([])
  return client.answers.map((text) => {
    expect(answerProblems(text, FORBIDDEN)).toEqual([])
    const answer = JSON.parse(text)
    // The only key the policy lets out is openai's, and only that value.
    if (answer.ok === true && typeof answer.data?.key === "string") expect(answer.data.key).toBe(ALLOWED_KEY)
    return answer
  })
}

// ---- arbitraries ----------------------------------------------------------------------------

/** A stretch of the byte stream: a well-formed frame around random bytes, raw garbage, or a random header. */
type Segment =
  | { readonly kind: "frame"; readonly payload: Uint8Array }
  | { readonly kind: "garbage"; readonly bytes: Uint8Array }
  | { readonly kind: "header"; readonly length: number; readonly bytes: Uint8Array }

const segment: fc.Arbitrary<Segment> = fc.oneof(
  fc.record({ kind: fc.constant("frame" as const), payload: fc.uint8Array({ maxLength: 300 }) }),
  fc.record({ kind: fc.constant("garbage" as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 64 }) }),
  fc.record({
    kind: fc.constant("header" as const),
    length: fc.oneof(
      fc.integer({ min: 0, max: 0xffffffff }),
      fc.constantFrom(0, 1, MAX_PAYLOAD, MAX_PAYLOAD + 1, 0x7fffffff, 0xffffffff)
    ),
    bytes: fc.uint8Array({ maxLength: 100 })
  })
)

const segmentBytes = (s: Segment): Buffer => {
  switch (s.kind) {
    case "frame": {
      const header = Buffer.alloc(4)
      header.writeUInt32BE(s.payload.length)
      return Buffer.concat([header, s.payload])
    }
    case "garbage":
      return Buffer.from(s.bytes)
    case "header": {
      const header = Buffer.alloc(4)
      header.writeUInt32BE(s.length)
      return Buffer.concat([header, s.bytes])
    }
  }
}

/** Strings that probe the name rule, path handling, encodings and object-key pitfalls. */
const NASTY_STRINGS = [
  "",
  " ",
  ".",
  "..",
  "../..",
  "../etc/passwd",
  "..\\..\\windows",
  "a/b",
  "/abs/path",
  "anthropic/../gemini",
  "%2e%2e%2f",
  "%",
  "-rf",
  ".hidden",
  "anthropic\u0000",
  "anthropic ",
  "ANTHROPIC",
  "anthropic:default",
  "*",
  "\ud800",
  "\udfff\ud800",
  "😀",
  "\u202e",
  "ü",
  "a".repeat(128),
  "a".repeat(129),
  "__proto__",
  "constructor",
  "prototype",
  "toString",
  "hasOwnProperty",
  "anthropic",
  "default",
  "work",
  "gemini",
  "openai",
  "secret-key",
  "missing"
]

/** Any JSON value, plus big and deeply nested ones. */
const wildValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom<unknown>(...NASTY_STRINGS) },
  { weight: 3, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  { weight: 2, arbitrary: fc.string({ unit: "binary", maxLength: 200 }) },
  { weight: 1, arbitrary: fc.constantFrom<unknown>(null, true, false, 0, -1, 1.5, 1e308, -0, [], {}) },
  { weight: 1, arbitrary: fc.integer({ min: 1_000, max: 60_000 }).map((n) => "x".repeat(n)) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 400 }).map((n) => nested(n)) },
  { weight: 1, arbitrary: fc.dictionary(fc.string({ maxLength: 10 }), fc.jsonValue({ maxDepth: 2 })) }
)

const nested = (depth: number): unknown => {
  let value: unknown = "bottom"
  for (let i = 0; i < depth; i++) value = i % 2 === 0 ? [value] : { deeper: value }
  return value
}

/** A valid (or nearly valid) token, as the inner side could send it. */
const tokenArb = fc.record(
  {
    access_token: fc.oneof(fc.constant("at-fuzz-new"), fc.string({ minLength: 1, maxLength: 40 })),
    expiry: fc.oneof(fc.constant(4_102_444_800), fc.integer()),
    token_type: fc.constantFrom("Bearer", "bearer", ""),
    refresh_token: fc.constantFrom("rt-from-inside", ""),
    scope: fc.constantFrom<string | null>(null, "openid"),
    account_id: fc.string({ maxLength: 20 }),
    extra: fc.jsonValue({ maxDepth: 2 })
  },
  { requiredKeys: ["access_token", "expiry", "token_type"] }
)

const basePayload = (op: (typeof OPS)[number]): fc.Arbitrary<Record<string, unknown>> => {
  const provider = fc.constantFrom("anthropic", "gemini", "missing")
  const bucket = fc.constantFrom("default", "work", "other")
  const address = fc.record({ provider, bucket }, { requiredKeys: ["provider"] })
  const name = fc.constantFrom("openai", "secret-key", "missing")
  switch (op) {
    case "get_token":
    case "remove_token":
    case "get_bucket_stats":
    case "refresh_token":
    case "oauth_initiate":
      return address
    case "save_token":
      return fc.record({ provider, bucket, token: tokenArb }, { requiredKeys: ["provider", "token"] })
    case "list_buckets":
      return fc.record({ provider })
    case "get_api_key":
    case "has_api_key":
      return fc.record({ name })
    case "list_providers":
    case "list_api_keys":
      return fc.constant({})
    case "oauth_exchange":
      return fc.record({ session_id: fc.string(), code: fc.string() })
    case "oauth_poll":
    case "oauth_cancel":
      return fc.record({ session_id: fc.string() })
  }
}

/** Where a mutation lands: the envelope, the payload, the token, or a made-up field. */
const PATHS: ReadonlyArray<ReadonlyArray<string>> = [
  ["v"],
  ["id"],
  ["op"],
  ["payload"],
  ["payload", "provider"],
  ["payload", "bucket"],
  ["payload", "name"],
  ["payload", "token"],
  ["payload", "token", "access_token"],
  ["payload", "token", "expiry"],
  ["payload", "token", "token_type"],
  ["payload", "token", "refresh_token"],
  ["payload", "token", "scope"],
  ["payload", "session_id"],
  ["payload", "capabilityToken"]
]

type Mutation =
  | { readonly path: ReadonlyArray<string>; readonly action: "delete" }
  | { readonly path: ReadonlyArray<string>; readonly action: "set"; readonly value: unknown }

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ path: fc.constantFrom(...PATHS), action: fc.constant("delete" as const) }),
  fc.record({ path: fc.constantFrom(...PATHS), action: fc.constant("set" as const), value: wildValue }),
  fc.record({
    path: fc.constantFrom(["payload", "bucket"] as ReadonlyArray<string>),
    action: fc.constant("set" as const),
    value: fc.constant(null)
  }),
  fc.record({
    path: fc
      .tuple(fc.constantFrom("payload", "token"), fc.string({ maxLength: 12 }))
      .map(([where, key]) => (where === "payload" ? ["payload", key] : ["payload", "token", key])),
    action: fc.constant("set" as const),
    value: wildValue
  })
)

/** Applies a mutation to a copy; a path through a non-object is left as it is. */
const mutate = (request: Record<string, unknown>, m: Mutation): Record<string, unknown> => {
  const copy = structuredClone(request)
  let target: Record<string, unknown> = copy
  for (const key of m.path.slice(0, -1)) {
    const next = target[key]
    if (typeof next !== "object" || next === null || Array.isArray(next)) return copy
    target = next as Record<string, unknown>
  }
  const last = m.path[m.path.length - 1]!
  if (m.action === "delete") delete target[last]
  else
    Object.defineProperty(target, last, {
      value: m.value,
      enumerable: true,
      writable: true,
      configurable: true
    })
  return copy
}

const mutatedRequest = (index: number): fc.Arbitrary<Record<string, unknown>> =>
  fc
    .constantFrom(...OPS, "unknown_op", "handshake", "")
    .chain((op) =>
      fc.tuple(
        fc.constant(op),
        op === "unknown_op" || op === "handshake" || op === ""
          ? fc.jsonValue({ maxDepth: 2 })
          : basePayload(op),
        fc.array(mutation, { maxLength: 3 })
      )
    )
    .map(([op, payload, mutations]) =>
      mutations.reduce<Record<string, unknown>>((request, m) => mutate(request, m), {
        v: 1,
        id: `m${index}`,
        op,
        payload
      })
    )

/** Random handshake frames: the envelope and payload fields with random values. */
const handshakeArb = fc.record(
  {
    v: fc.oneof(fc.constant(1), fc.jsonValue()),
    op: fc.oneof(fc.constant("handshake"), fc.constantFrom("HANDSHAKE", "get_token", "")),
    payload: fc.oneof(
      fc.record(
        {
          minVersion: fc.oneof(fc.integer({ min: -2, max: 3 }), fc.constantFrom(1.5, "1", null, 1e308)),
          maxVersion: fc.oneof(fc.integer({ min: -2, max: 3 }), fc.constantFrom(1.5, "1", null, 1e308)),
          capabilityToken: wildValue
        },
        { requiredKeys: [] }
      ),
      fc.jsonValue({ maxDepth: 2 })
    )
  },
  { requiredKeys: [] }
)

// ---- the tests ------------------------------------------------------------------------------

describe("fuzzing a live server", () => {
  it("the answer check itself rejects what it must (so the fuzz checks are not vacuous)", () => {
    const ok = (data: unknown) => JSON.stringify({ v: 1, id: "x", ok: true, data })
    const fail = (extra: Record<string, unknown>) =>
      JSON.stringify({ v: 1, id: "x", ok: false, code: "NOT_FOUND", error: "token not found", ...extra })
    expect(answerProblems(ok({ access_token: "a" }), FORBIDDEN)).toEqual([])
    expect(answerProblems(fail({}), FORBIDDEN)).toEqual([])
    expect(
      answerProblems(JSON.stringify({ v: 1, id: "Error: at x", ok: true, data: {} }), FORBIDDEN)
    ).toEqual([])
    for (const bad of [
      "not json",
      ok({ access_token: "a", refresh_token: "r" }),
      ok({ nested: { refresh_token: "r" } }),
      ok({ key: FORBIDDEN_KEY }),
      ok({ access_token: WORK_ACCESS }),
      fail({ code: "TEAPOT" }),
      fail({ retryAfter: 1 }),
      fail({ error: "Error: boom" }),
      fail({ error: "boom\n    at Object.<anonymous> (/x.js:1:1)" }),
      fail({ stack: "x" }),
      JSON.stringify({ v: 3, ok: true, data: {} }),
      JSON.stringify({ v: 1, ok: "yes", data: {} }),
      JSON.stringify({ v: 1, ok: true, data: [] })
    ]) {
      expect(answerProblems(bad, FORBIDDEN), bad).not.toEqual([])
    }
  })

  it.scoped(
    "random bytes, random JSON, random handshakes and mutated requests: safe answers, no crash, no leak",
    () =>
      Effect.gen(function* () {
        // Off: the steady client asks after every run, far more often than 60 times a second.
        const server = yield* startServer({ allow: ALLOW, allowKeys: ALLOW_KEYS, rateLimit: 0 })
        yield* seed(server)
        const steady = yield* Effect.promise(() => FrameClient.open(server.socketPath))
        let steadyRequests = 0
        const outcomes = new Set<string>()
        /** After every run: the well-behaved client is still served, and gets what the policy allows. */
        const steadyStillServed = async () => {
          const reply = await steady.request("get_api_key", { name: "openai" }, `s${++steadyRequests}`)
          expect(reply).toMatchObject({ ok: true, data: { key: ALLOWED_KEY } })
        }

        // 1. Random bytes: well-formed frames of random bytes, raw garbage, random 4-byte headers,
        //    written in random pieces, before or after a handshake.
        yield* Effect.promise(() =>
          fc.assert(
            fc.asyncProperty(
              fc.boolean(),
              fc.array(segment, { minLength: 1, maxLength: 8 }),
              fc.array(fc.nat(), { maxLength: 12 }),
              async (handshake, segments, cuts) => {
                const client = await RawClient.connect(server.socketPath)
                const stream = Buffer.concat([
                  ...(handshake ? [HANDSHAKE] : []),
                  ...segments.map(segmentBytes)
                ])
                await client.writeParts(splitAt(stream, cuts))
                await client.finish()
                const answers = expectSafe(client)
                if (!handshake) {
                  // Before the handshake, nothing but one refusal without id may come back: a refused
                  // handshake, or (§3) the error frame for a length over the limit.
                  expect(answers.length).toBeLessThanOrEqual(1)
                  for (const answer of answers) {
                    expect(answer.ok).toBe(false)
                    expect(answer.id).toBeUndefined()
                  }
                } else if (segments.every((s) => s.kind === "frame")) {
                  // Complete frames of junk after the handshake: each gets exactly one INVALID_REQUEST.
                  expect(answers[0]).toEqual({ v: 1, op: "handshake", ok: true, data: { version: 1 } })
                  expect(answers.length).toBe(1 + segments.length)
                  for (const answer of answers.slice(1)) {
                    expect(answer.ok).toBe(false)
                    expect(answer.code).toBe("INVALID_REQUEST")
                  }
                }
                await steadyStillServed()
              }
            ),
            { numRuns: 300 }
          )
        )

        // 2. Random JSON values as frames after a handshake: each answered exactly once, in shape.
        yield* Effect.promise(() =>
          fc.assert(
            fc.asyncProperty(
              fc.array(
                fc.oneof(
                  fc.jsonValue({ maxDepth: 4 }),
                  fc.record(
                    {
                      v: fc.oneof(fc.constant(1), fc.jsonValue()),
                      id: fc.oneof(fc.string({ minLength: 1, maxLength: 10 }), fc.jsonValue()),
                      op: fc.oneof(fc.constantFrom(...OPS), fc.jsonValue()),
                      payload: fc.jsonValue({ maxDepth: 3 })
                    },
                    { requiredKeys: [] }
                  )
                ),
                { minLength: 1, maxLength: 8 }
              ),
              async (values) => {
                const client = await RawClient.connect(server.socketPath)
                client.write(HANDSHAKE)
                for (const value of values) client.write(encodeFrame(JSON.stringify(value)))
                await client.finish()
                const answers = expectSafe(client)
                expect(answers.length).toBe(1 + values.length)
                await steadyStillServed()
              }
            ),
            { numRuns: 200 }
          )
        )

        // 3. Random handshakes: refused ones are answered once and closed; an accepted one serves.
        yield* Effect.promise(() =>
          fc.assert(
            fc.asyncProperty(handshakeArb, async (handshake) => {
              const client = await RawClient.connect(server.socketPath)
              client.write(encodeFrame(JSON.stringify(handshake)))
              client.sendJson({ v: 1, id: "after", op: "list_api_keys", payload: {} })
              await client.finish()
              const answers = expectSafe(client)
              if (answers[0]?.ok === true) {
                expect(answers.map((a) => a.id)).toEqual([undefined, "after"])
                // The request was written with v 1 before the answer came: served on a version 1
                // connection, refused (and the connection kept) on a version 2 one (§20).
                const version = (answers[0].data as { version: number }).version
                expect(answers[1]).toEqual(
                  version === 1
                    ? { v: 1, id: "after", ok: true, data: { keys: ["openai"] } }
                    : { v: 2, id: "after", ok: false, code: "INVALID_REQUEST", error: "v must be 2" }
                )
              } else {
                expect(answers.length).toBeLessThanOrEqual(1)
                for (const answer of answers) expect(answer).toMatchObject({ op: "handshake", ok: false })
              }
              await steadyStillServed()
            }),
            { numRuns: 150 }
          )
        )

        // 4. Schema-shaped requests with mutated fields, pipelined on one connection.
        yield* Effect.promise(() =>
          fc.assert(
            fc.asyncProperty(
              fc
                .integer({ min: 1, max: 8 })
                .chain((n) => fc.tuple(...Array.from({ length: n }, (_, i) => mutatedRequest(i)))),
              async (requests) => {
                const client = await RawClient.connect(server.socketPath)
                client.write(HANDSHAKE)
                const frames = requests.map((r) => encodeFrame(JSON.stringify(r)))
                for (const frame of frames) client.write(frame)
                await client.finish()
                const answers = expectSafe(client)
                for (const answer of answers.slice(1)) {
                  const op = requests.find((r) => r.id === answer.id)?.op
                  outcomes.add(`${typeof op === "string" ? op : "?"}:${answer.ok ? "ok" : answer.code}`)
                }
                const sentIds = requests.map((r) => r.id)
                for (const answer of answers.slice(1)) {
                  if (answer.id !== undefined) expect(sentIds).toContain(answer.id)
                }
                if (frames.every((f) => f.length - 4 <= MAX_PAYLOAD)) {
                  expect(answers.length).toBe(1 + requests.length)
                } else {
                  // An oversize frame ends the connection; at most one answer per frame before it.
                  expect(answers.length).toBeLessThanOrEqual(1 + requests.length)
                }
                await steadyStillServed()
              }
            ),
            { numRuns: 600 }
          )
        )

        // The mutated requests reached every layer: the schema, the policy, the handlers and the store.
        for (const expected of [
          "get_token:ok",
          "get_token:UNAUTHORIZED",
          "get_token:NOT_FOUND",
          "save_token:ok",
          "save_token:INVALID_REQUEST",
          "save_token:UNAUTHORIZED",
          "get_api_key:ok",
          "get_api_key:UNAUTHORIZED",
          "list_buckets:ok",
          "remove_token:ok"
        ]) {
          expect([...outcomes]).toContain(expected)
        }

        // Still serving, and what it serves is still right.
        const token = yield* Effect.promise(() => steady.request("get_token", { provider: "anthropic" }))
        expect(answerProblems(JSON.stringify(token), FORBIDDEN)).toEqual([])
        expect(
          yield* Effect.promise(() => steady.request("get_api_key", { name: "secret-key" }))
        ).toMatchObject({
          ok: false,
          code: "UNAUTHORIZED"
        })

        // Nothing outside the policy was written or removed, and nothing landed outside the data directory.
        const tokensDir = path.join(server.dataDir, "tokens")
        const tokenFiles = (fs.readdirSync(tokensDir, { recursive: true }) as Array<string>)
          .filter((entry) => entry.endsWith(".json"))
          .sort()
        expect(tokenFiles.filter((f) => f !== path.join("anthropic", "default.json"))).toEqual([
          path.join("anthropic", "work.json"),
          path.join("gemini", "default.json")
        ])
        expect(fs.readdirSync(path.dirname(server.dataDir)).sort()).toEqual(["data", "sock"])
        expect(fs.readdirSync(path.join(server.dataDir, "keys")).sort()).toEqual([
          "openai.key",
          "secret-key.key"
        ])
        // The stored refresh token of the allowed token survived every save_token (or the token was removed).
        const allowedFile = path.join(tokensDir, "anthropic", "default.json")
        if (fs.existsSync(allowedFile)) {
          const stored = JSON.parse(fs.readFileSync(allowedFile, "utf8"))
          expect(stored.refresh_token === REFRESH || stored.refresh_token === undefined).toBe(true)
        }

        // No defect was contained on the way (a contained defect is still a bug), and when every
        // client is gone the server holds no connection, request in flight or deadline.
        const status = server.status()
        expect(status.connections.rejected.internal).toBeUndefined()
        expect(
          server.audit.events
            .filter((e) => e.level === "Error")
            .map((e) => `${e.message} ${JSON.stringify(e.fields)}`)
        ).toEqual([])
        steady.close()
        yield* Effect.promise(() =>
          poll(server.status, (status) => status.connections.open === 0, { what: "every connection closed" })
        )
        const after = server.status()
        expect(after.requestsInFlight).toBe(0)
        expect(after.deadlinesPending).toBe(0)
        expect(after.connections.total).toBeGreaterThan(600)
      }),
    60_000
  )
})
