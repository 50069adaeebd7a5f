import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import fc from "fast-check"
import * as FileTokenStore from "../src/layers/FileTokenStore.js"
import { FrameClient } from "./support/frame-client.js"
import { startServer } from "./support/server.js"

const names = fc.constantFrom("anthropic", "openai", "gemini@work", "x+y")
const buckets = fc.option(fc.constantFrom("default", "work", "b.1"), { nil: undefined })
const secret = fc.string({ minLength: 8, maxLength: 40 }).map((s) => `rt-${s}`)
const passthrough = fc.dictionary(
  fc.string({ minLength: 1, maxLength: 10 }).filter((k) => !["refresh_token", "__proto__"].includes(k)),
  fc.jsonValue({ maxDepth: 2 })
)

const operation = fc.oneof(
  fc.record({
    op: fc.constant("get_token"),
    payload: fc.record({ provider: names, bucket: buckets }, { requiredKeys: ["provider"] })
  }),
  fc.record({
    op: fc.constant("save_token"),
    payload: fc.record({
      provider: names,
      token: fc.record({
        access_token: fc.string({ minLength: 1 }),
        expiry: fc.integer(),
        token_type: fc.constant("Bearer"),
        refresh_token: secret
      })
    })
  }),
  fc.record({ op: fc.constant("get_bucket_stats"), payload: fc.record({ provider: names }) }),
  fc.record({ op: fc.constant("list_providers"), payload: fc.constant({}) }),
  fc.record({ op: fc.constant("list_buckets"), payload: fc.record({ provider: names }) }),
  fc.record({ op: fc.constantFrom("get_token", "save_token", "remove_token"), payload: fc.jsonValue() })
)

describe("no response ever carries a refresh token (property)", () => {
  it.scoped("random stored tokens and random operations over the socket", () =>
    Effect.gen(function* () {
      const server = yield* startServer()
      const store = yield* FileTokenStore.make(server.dataDir)
      const client = yield* Effect.promise(() => FrameClient.open(server.socketPath))
      yield* Effect.promise(() =>
        fc.assert(
          fc.asyncProperty(
            fc.array(fc.tuple(names, fc.constantFrom("default", "work", "b.1"), secret, passthrough), {
              maxLength: 4
            }),
            fc.array(operation, { minLength: 1, maxLength: 12 }),
            async (stored, operations) => {
              const secrets = stored.map(([, , refresh]) => refresh)
              for (const [provider, bucket, refresh, extra] of stored) {
                await Effect.runPromise(
                  store.save(
                    { provider, bucket },
                    { ...extra, access_token: "at", expiry: 1, token_type: "Bearer", refresh_token: refresh }
                  )
                )
              }
              for (const { op, payload } of operations) {
                const raw = JSON.stringify(await client.request(op, payload))
                expect(raw).not.toContain("refresh_token")
                for (const value of secrets) expect(raw).not.toContain(value)
                if (
                  op === "save_token" &&
                  typeof payload === "object" &&
                  payload !== null &&
                  "token" in payload
                ) {
                  expect(raw).not.toContain(
                    (payload as { token: { refresh_token: string } }).token.refresh_token
                  )
                }
              }
            }
          ),
          { numRuns: 60 }
        )
      )
      client.close()
    })
  )
})
