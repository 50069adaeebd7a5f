import { describe, expect, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as TestClock from "effect/TestClock"
import * as FileKeyStorage from "../src/layers/FileKeyStorage.js"
import * as FileTokenStore from "../src/layers/FileTokenStore.js"
import { FrameClient, type Json } from "./support/frame-client.js"
import { startServer, type TestServer } from "./support/server.js"
import { gatedStores, type StoreCalls } from "./support/stores.js"

const open = (server: TestServer) => Effect.promise(() => FrameClient.open(server.socketPath))
const call = (client: FrameClient, op: string, payload?: Json) =>
  Effect.promise(() => client.request(op, payload))
const t = { access_token: "at", expiry: 2_000_000_000, token_type: "Bearer", refresh_token: "rt" }

const seed = (server: TestServer) =>
  Effect.scoped(
    Effect.gen(function* () {
      const store = yield* FileTokenStore.make(server.dataDir)
      for (const [provider, bucket] of [
        ["anthropic", "default"],
        ["anthropic", "work"],
        ["openai", "default"],
        ["gemini", "team"]
      ] as const) {
        yield* store.save({ provider, bucket }, t)
      }
      const keys = yield* FileKeyStorage.make(server.dataDir)
      yield* keys.set("openai", "k1")
      yield* keys.set("anthropic", "k2")
    })
  )

describe("access policy (PROTOCOL.md §8, §14)", () => {
  it.scoped("bucket-level token patterns and key patterns; lists show only what is allowed", () =>
    Effect.gen(function* () {
      const server = yield* startServer({
        allow: ["anthropic:work", "openai", "*:team"],
        allowKeys: ["openai"]
      })
      yield* seed(server)
      const client = yield* open(server)
      expect((yield* call(client, "get_token", { provider: "anthropic", bucket: "work" })).ok).toBe(true)
      expect((yield* call(client, "get_token", { provider: "anthropic" })).code).toBe("UNAUTHORIZED")
      expect((yield* call(client, "get_token", { provider: "openai", bucket: "any" })).code).toBe("NOT_FOUND")
      expect((yield* call(client, "get_token", { provider: "gemini", bucket: "team" })).ok).toBe(true)
      expect((yield* call(client, "get_token", { provider: "gemini" })).code).toBe("UNAUTHORIZED")
      expect((yield* call(client, "save_token", { provider: "anthropic", token: t })).code).toBe(
        "UNAUTHORIZED"
      )
      expect((yield* call(client, "remove_token", { provider: "anthropic" })).code).toBe("UNAUTHORIZED")
      expect((yield* call(client, "get_bucket_stats", { provider: "anthropic" })).code).toBe("UNAUTHORIZED")
      expect((yield* call(client, "list_providers")).data.providers.sort()).toEqual([
        "anthropic",
        "gemini",
        "openai"
      ])
      expect((yield* call(client, "list_buckets", { provider: "anthropic" })).data.buckets).toEqual(["work"])
      expect((yield* call(client, "list_buckets", { provider: "zzz" })).data.buckets).toEqual([])
      expect((yield* call(client, "get_api_key", { name: "openai" })).data.key).toBe("k1")
      expect((yield* call(client, "get_api_key", { name: "anthropic" })).code).toBe("UNAUTHORIZED")
      expect((yield* call(client, "has_api_key", { name: "anthropic" })).code).toBe("UNAUTHORIZED")
      expect((yield* call(client, "list_api_keys")).data.keys).toEqual(["openai"])
      client.close()
    })
  )

  it.scoped("a provider excluded entirely: list_buckets is UNAUTHORIZED and it is not listed", () =>
    Effect.gen(function* () {
      const server = yield* startServer({ allow: ["anthropic:work"] })
      yield* seed(server)
      const client = yield* open(server)
      expect((yield* call(client, "list_buckets", { provider: "openai" })).code).toBe("UNAUTHORIZED")
      expect((yield* call(client, "list_providers")).data.providers).toEqual(["anthropic"])
      client.close()
    })
  )

  it.scoped(
    "list_providers under a bucket policy lists a provider only when an allowed bucket holds a token",
    () =>
      Effect.gen(function* () {
        const server = yield* startServer({ allow: ["anthropic:nothing-here", "openai:default"] })
        yield* seed(server)
        const client = yield* open(server)
        expect((yield* call(client, "list_providers")).data.providers).toEqual(["openai"])
        client.close()
      })
  )

  it.scoped("a request refused by validation or policy touches no store", () =>
    Effect.gen(function* () {
      const calls: StoreCalls = { count: 0 }
      const gate = yield* Deferred.make<void>()
      const server = yield* startServer({ allow: ["anthropic:work"], stores: gatedStores(gate, calls) })
      const client = yield* open(server)
      for (const [op, payload, code] of [
        ["get_token", { provider: "openai" }, "UNAUTHORIZED"],
        ["save_token", { provider: "openai", token: t }, "UNAUTHORIZED"],
        ["remove_token", { provider: "anthropic", bucket: "x" }, "UNAUTHORIZED"],
        ["list_buckets", { provider: "openai" }, "UNAUTHORIZED"],
        ["get_token", { provider: "../x" }, "INVALID_REQUEST"],
        [
          "save_token",
          { provider: "anthropic", bucket: "work", token: { access_token: "" } },
          "INVALID_REQUEST"
        ]
      ] as const) {
        const reply = yield* call(client, op, payload)
        expect(reply.code, `${op} ${JSON.stringify(payload)}`).toBe(code)
      }
      expect(calls.count).toBe(0)
      client.close()
    })
  )
})

describe("per-connection rate limit on the Clock (PROTOCOL.md §10)", () => {
  it.scoped(
    "60 per second, then RATE_LIMITED with 0 < retryAfter <= 1; every frame counts; refills with time",
    () =>
      Effect.gen(function* () {
        const server = yield* startServer({ rateLimit: 60 })
        const client = yield* open(server)
        const other = yield* open(server)
        for (let i = 0; i < 59; i++) client.send({ v: 1, id: `r${i}`, op: "list_api_keys" })
        client.send("{bad json")
        const answers = yield* Effect.promise(() =>
          Promise.all(Array.from({ length: 59 }, (_, i) => client.frameWhere((f) => f.id === `r${i}`)))
        )
        expect(answers.every((a) => a.ok)).toBe(true)
        expect((yield* Effect.promise(() => client.frameWhere((f) => f.id === undefined))).code).toBe(
          "INVALID_REQUEST"
        )
        const limited = yield* call(client, "list_api_keys")
        // The clock stands still: the next request is allowed 1/60 s from now, rounded up to the millisecond.
        expect(limited).toMatchObject({ ok: false, code: "RATE_LIMITED", retryAfter: 0.017 })
        expect((yield* call(other, "list_api_keys")).ok).toBe(true)
        yield* TestClock.adjust(`${Math.ceil(limited.retryAfter * 1000)} millis`)
        expect((yield* call(client, "list_api_keys")).ok).toBe(true)
        expect((yield* call(client, "list_api_keys")).code).toBe("RATE_LIMITED")
        yield* TestClock.adjust("1 second")
        const refilled = yield* Effect.promise(() =>
          Promise.all(Array.from({ length: 60 }, () => client.request("list_api_keys")))
        )
        expect(refilled.every((a) => a.ok)).toBe(true)
        client.close()
        other.close()
      })
  )

  it.scoped("--rate-limit 0 turns the limit off", () =>
    Effect.gen(function* () {
      const server = yield* startServer({ rateLimit: 0 })
      const client = yield* open(server)
      const replies = yield* Effect.promise(() =>
        Promise.all(Array.from({ length: 300 }, () => client.request("list_api_keys")))
      )
      expect(replies.every((r) => r.ok)).toBe(true)
      client.close()
    })
  )
})
