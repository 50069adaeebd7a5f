import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as TestClock from "effect/TestClock"
import * as FileKeyStorage from "../src/layers/FileKeyStorage.js"
import * as FileTokenStore from "../src/layers/FileTokenStore.js"
import type { OAuthProvider } from "../src/services/OAuthProviders.js"
import { FrameClient, type Json } from "./support/frame-client.js"
import { scriptedRefresher } from "./support/refresher.js"
import { startServer, type TestServer } from "./support/server.js"

/**
 * Restricted connections (PROTOCOL.md §19), row by row, against the same
 * stored state on a restricted server and on an open one: real socket, real
 * file store, a scripted token endpoint, the TestClock.
 */

const acme: OAuthProvider = {
  name: "acme",
  tokenEndpoint: "https://auth.acme.test/token",
  clientId: "client-1",
  scopes: []
}

const NOW_MS = 1_000_000_000
const valid = {
  access_token: "at-anthropic",
  expiry: 2_000_000_000,
  token_type: "Bearer",
  refresh_token: "rt-anthropic"
}
const expired = { access_token: "at-0", expiry: 1_000, token_type: "Bearer", refresh_token: "rt-0" }

const DENIED = { ok: false, code: "FORBIDDEN", error: "access denied" }

/** A server on fresh stores holding: anthropic (valid), acme (expired), other (outside the policy); keys openai and secret. */
const seeded = (restrict: boolean) =>
  Effect.gen(function* () {
    const refresher = scriptedRefresher()
    const server = yield* startServer({
      restrict,
      allow: ["anthropic", "acme", "ghost"],
      allowKeys: ["openai", "ghostkey"],
      providers: [acme],
      refresher: refresher.layer
    })
    yield* Effect.scoped(
      Effect.gen(function* () {
        const tokens = yield* FileTokenStore.make(server.dataDir)
        yield* tokens.save({ provider: "anthropic", bucket: "default" }, valid)
        yield* tokens.save({ provider: "acme", bucket: "default" }, expired)
        yield* tokens.save({ provider: "other", bucket: "default" }, valid)
        const keys = yield* FileKeyStorage.make(server.dataDir)
        yield* keys.set("openai", "sk-openai")
        yield* keys.set("secret", "sk-secret")
      })
    )
    yield* TestClock.setTime(NOW_MS)
    const client = yield* Effect.promise(() => FrameClient.open(server.socketPath))
    const call = (op: string, payload: Json = {}) => Effect.promise(() => client.request(op, payload))
    return { server, refresher, call }
  })

const tokenFile = (server: TestServer, provider: string) =>
  path.join(server.dataDir, "tokens", provider, "default.json")

const forbiddenLines = (server: TestServer) =>
  server.audit.events.filter((event) => event.message === "request forbidden")

describe("restricted connections (§19), each row against an open server", () => {
  it.scoped("get_token: stored and allowed is answered; not stored and outside the policy look alike", () =>
    Effect.gen(function* () {
      const restricted = yield* seeded(true)
      const open = yield* seeded(false)
      const sanitized = { access_token: "at-anthropic", expiry: 2_000_000_000, token_type: "Bearer" }
      for (const { call } of [restricted, open]) {
        expect(yield* call("get_token", { provider: "anthropic" })).toMatchObject({
          ok: true,
          data: sanitized
        })
      }
      expect(yield* restricted.call("get_token", { provider: "ghost" })).toMatchObject(DENIED)
      expect(yield* restricted.call("get_token", { provider: "other" })).toMatchObject(DENIED)
      expect(yield* restricted.call("get_token", { provider: "anthropic", bucket: "nope" })).toMatchObject(
        DENIED
      )
      expect(yield* open.call("get_token", { provider: "ghost" })).toMatchObject({
        ok: false,
        code: "NOT_FOUND"
      })
      expect(yield* open.call("get_token", { provider: "other" })).toMatchObject({
        ok: false,
        code: "UNAUTHORIZED"
      })
    })
  )

  it.scoped(
    "get_token of an expired token: refreshed on the host first when restricted, answered as stored when open",
    () =>
      Effect.gen(function* () {
        const restricted = yield* seeded(true)
        const reply = yield* restricted.call("get_token", { provider: "acme" })
        expect(reply).toMatchObject({ ok: true, data: { access_token: "at-1", token_type: "Bearer" } })
        expect(reply.data.refresh_token).toBeUndefined()
        expect(restricted.refresher.presented).toEqual(["rt-0"])
        const saved = JSON.parse(fs.readFileSync(tokenFile(restricted.server, "acme"), "utf8"))
        expect(saved).toMatchObject({ access_token: "at-1", refresh_token: "rt-1" })

        const open = yield* seeded(false)
        expect(yield* open.call("get_token", { provider: "acme" })).toMatchObject({
          ok: true,
          data: { access_token: "at-0", expiry: 1_000 }
        })
        expect(open.refresher.calls()).toBe(0)
      })
  )

  it.scoped("get_api_key: stored and allowed is answered; not stored and outside the policy look alike", () =>
    Effect.gen(function* () {
      const restricted = yield* seeded(true)
      const open = yield* seeded(false)
      for (const { call } of [restricted, open]) {
        expect(yield* call("get_api_key", { name: "openai" })).toMatchObject({
          ok: true,
          data: { key: "sk-openai" }
        })
      }
      expect(yield* restricted.call("get_api_key", { name: "ghostkey" })).toMatchObject(DENIED)
      expect(yield* restricted.call("get_api_key", { name: "secret" })).toMatchObject(DENIED)
      expect(yield* open.call("get_api_key", { name: "ghostkey" })).toMatchObject({
        ok: false,
        code: "NOT_FOUND"
      })
      expect(yield* open.call("get_api_key", { name: "secret" })).toMatchObject({
        ok: false,
        code: "UNAUTHORIZED"
      })
    })
  )

  it.scoped("lists are empty when restricted, filled when open", () =>
    Effect.gen(function* () {
      const restricted = yield* seeded(true)
      const open = yield* seeded(false)
      expect((yield* restricted.call("list_providers")).data).toEqual({ providers: [] })
      expect((yield* restricted.call("list_buckets", { provider: "anthropic" })).data).toEqual({
        buckets: []
      })
      expect((yield* restricted.call("list_buckets", { provider: "other" })).data).toEqual({ buckets: [] })
      expect((yield* restricted.call("list_api_keys")).data).toEqual({ keys: [] })
      expect((yield* open.call("list_providers")).data).toEqual({ providers: ["acme", "anthropic"] })
      expect((yield* open.call("list_buckets", { provider: "anthropic" })).data).toEqual({
        buckets: ["default"]
      })
      expect((yield* open.call("list_api_keys")).data).toEqual({ keys: ["openai"] })
    })
  )

  it.scoped("get_bucket_stats is zeros for any bucket when restricted, stored or not", () =>
    Effect.gen(function* () {
      const restricted = yield* seeded(true)
      const open = yield* seeded(false)
      expect((yield* restricted.call("get_bucket_stats", { provider: "anthropic" })).data).toEqual({
        bucket: "default",
        requestCount: 0,
        percentage: 0
      })
      expect((yield* restricted.call("get_bucket_stats", { provider: "nobody", bucket: "b" })).data).toEqual({
        bucket: "b",
        requestCount: 0,
        percentage: 0
      })
      expect(yield* open.call("get_bucket_stats", { provider: "nobody", bucket: "b" })).toMatchObject({
        ok: false,
        code: "UNAUTHORIZED"
      })
      expect(yield* open.call("get_bucket_stats", { provider: "anthropic" })).toMatchObject({ ok: true })
    })
  )

  it.scoped(
    "writes, existence checks, refreshes and logins are FORBIDDEN when restricted and touch nothing",
    () =>
      Effect.gen(function* () {
        const restricted = yield* seeded(true)
        const newToken = {
          access_token: "at-new",
          expiry: 2_000_000_000,
          token_type: "Bearer",
          refresh_token: "r"
        }
        const before = fs.readFileSync(tokenFile(restricted.server, "anthropic"), "utf8")
        const refused: Array<[string, Json]> = [
          ["save_token", { provider: "anthropic", token: newToken }],
          ["save_token", { provider: "ghost", token: newToken }],
          ["remove_token", { provider: "anthropic" }],
          ["has_api_key", { name: "openai" }],
          ["refresh_token", { provider: "acme" }],
          ["oauth_initiate", { provider: "acme" }],
          ["oauth_exchange", { session_id: "s", code: "c" }],
          ["oauth_poll", { session_id: "s" }],
          ["oauth_cancel", { session_id: "s" }]
        ]
        for (const [op, payload] of refused) {
          expect(yield* restricted.call(op, payload), op).toMatchObject({ ok: false, code: "FORBIDDEN" })
        }
        expect(fs.readFileSync(tokenFile(restricted.server, "anthropic"), "utf8")).toBe(before)
        expect(fs.existsSync(path.dirname(tokenFile(restricted.server, "ghost")))).toBe(false)
        expect(restricted.refresher.calls()).toBe(0)

        const open = yield* seeded(false)
        expect(yield* open.call("save_token", { provider: "ghost", token: newToken })).toMatchObject({
          ok: true
        })
        expect(fs.existsSync(tokenFile(open.server, "ghost"))).toBe(true)
        expect(yield* open.call("remove_token", { provider: "anthropic" })).toMatchObject({ ok: true })
        expect(fs.existsSync(tokenFile(open.server, "anthropic"))).toBe(false)
        expect(yield* open.call("has_api_key", { name: "openai" })).toMatchObject({
          ok: true,
          data: { exists: true }
        })
        expect(yield* open.call("refresh_token", { provider: "acme" })).toMatchObject({ ok: true })
        // acme can refresh but has no login endpoints: an open connection is told so.
        expect(yield* open.call("oauth_initiate", { provider: "acme" })).toMatchObject({
          ok: false,
          code: "PROVIDER_NOT_FOUND",
          error: "provider has no usable login on the host"
        })
        expect(forbiddenLines(open.server)).toEqual([])
      })
  )

  it.scoped("each refusal is audited with its op, at most once a second per op and connection", () =>
    Effect.gen(function* () {
      const restricted = yield* seeded(true)
      for (let i = 0; i < 5; i++) {
        yield* restricted.call("has_api_key", { name: "openai" })
        yield* restricted.call("get_token", { provider: "ghost" })
      }
      const lines = () => forbiddenLines(restricted.server).map((event) => event.fields)
      expect(lines()).toEqual([
        { op: "has_api_key", outcome: "forbidden" },
        { op: "get_token", outcome: "forbidden" }
      ])
      yield* TestClock.adjust(999)
      yield* restricted.call("has_api_key", { name: "openai" })
      expect(lines()).toHaveLength(2)
      yield* TestClock.adjust(1)
      yield* restricted.call("has_api_key", { name: "openai" })
      expect(lines()).toHaveLength(3)
      // Another connection has its own allowance.
      const other = yield* Effect.promise(() => FrameClient.open(restricted.server.socketPath))
      yield* Effect.promise(() => other.request("has_api_key", { name: "openai" }))
      expect(lines()).toHaveLength(4)
    })
  )
})
