import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { StoreFailure } from "../src/errors/errors.js"
import * as FileTokenStore from "../src/layers/FileTokenStore.js"
import { TokenStore } from "../src/services/TokenStore.js"
import { FrameClient, type Json } from "./support/frame-client.js"
import * as MemoryStores from "./support/memory-stores.js"
import { startServer } from "./support/server.js"
import { harnessTitle, SOCKET_HARNESSES } from "./support/socket-harness.js"

const open = (server: { readonly socketPath: string }) =>
  Effect.promise(() => FrameClient.open(server.socketPath))
const call = (client: FrameClient, op: string, payload?: Json, id?: string) =>
  Effect.promise(() => client.request(op, payload, id))

const token = (fields: Json = {}) => ({
  access_token: "at-secret-1",
  expiry: 1_900_000_000,
  token_type: "Bearer",
  refresh_token: "rt-secret-1",
  scope: "openid",
  account_id: "acct-7",
  ...fields
})

/** Writes through the file store as the host CLI would (full token, refresh token included). */
const seedToken = (dataDir: string, provider: string, bucket: string, value: Json) =>
  Effect.scoped(
    Effect.flatMap(FileTokenStore.make(dataDir), (store) => store.save({ provider, bucket }, value))
  )

for (const harness of SOCKET_HARNESSES) {
  describe.skipIf(harness.missing !== undefined)(
    harnessTitle(harness, "token operations over the socket"),
    () => {
      it.scoped(
        "get_token answers the sanitized token with passthrough fields; bucket defaults to default",
        () =>
          Effect.gen(function* () {
            const server = yield* harness.start()
            yield* server.seedToken("anthropic", "default", token())
            const client = yield* open(server)
            const reply = yield* call(client, "get_token", { provider: "anthropic" }, "a-1")
            expect(reply).toEqual({
              v: 1,
              id: "a-1",
              ok: true,
              data: {
                access_token: "at-secret-1",
                expiry: 1_900_000_000,
                token_type: "Bearer",
                scope: "openid",
                account_id: "acct-7"
              }
            })
            const explicit = yield* call(client, "get_token", { provider: "anthropic", bucket: "default" })
            expect(explicit.data).toEqual(reply.data)
            const missing = yield* call(client, "get_token", { provider: "anthropic", bucket: "work" }, "a-2")
            expect(missing).toMatchObject({ v: 1, id: "a-2", ok: false, code: "NOT_FOUND" })
            client.close()
          })
      )

      it.scoped("save_token drops the incoming refresh token, merges, and keeps the stored one", () =>
        Effect.gen(function* () {
          const server = yield* harness.start()
          yield* server.seedToken("anthropic", "work", token())
          const client = yield* open(server)
          const saved = yield* call(client, "save_token", {
            provider: "anthropic",
            bucket: "work",
            token: {
              access_token: "at-new",
              expiry: 1_950_000_000,
              token_type: "Bearer",
              refresh_token: "rt-from-sandbox",
              extra: { a: 1 }
            }
          })
          expect(saved).toMatchObject({ ok: true, data: {} })
          const stored = yield* server.readStored("anthropic", "work")
          expect(stored).toEqual({
            ...token(),
            access_token: "at-new",
            expiry: 1_950_000_000,
            extra: { a: 1 }
          })
          const fresh = yield* call(client, "save_token", {
            provider: "fresh",
            token: { access_token: "at-f", expiry: 1, token_type: "Bearer", refresh_token: "rt-sandbox" }
          })
          expect(fresh.ok).toBe(true)
          expect(yield* server.readStored("fresh", "default")).toEqual({
            access_token: "at-f",
            expiry: 1,
            token_type: "Bearer"
          })
          const got = yield* call(client, "get_token", { provider: "anthropic", bucket: "work" })
          expect(got.data.access_token).toBe("at-new")
          expect(got.data.refresh_token).toBeUndefined()
          client.close()
        })
      )

      it.scoped("save_token rejects a malformed token and names the field", () =>
        Effect.gen(function* () {
          const server = yield* harness.start()
          const client = yield* open(server)
          const cases: ReadonlyArray<[Json, string]> = [
            [{ access_token: "", expiry: 1, token_type: "Bearer" }, "access_token"],
            [{ access_token: "x", token_type: "Bearer" }, "expiry"],
            [{ access_token: "x", expiry: "soon", token_type: "Bearer" }, "expiry"],
            [{ access_token: "x", expiry: 1 }, "token_type"],
            [{ access_token: "x", expiry: 1, token_type: "Bearer", refresh_token: 5 }, "refresh_token"],
            ["not an object", "token"]
          ]
          for (const [bad, field] of cases) {
            const reply = yield* call(client, "save_token", { provider: "p", token: bad }, "bad")
            expect(reply).toMatchObject({ id: "bad", ok: false, code: "INVALID_REQUEST" })
            expect(reply.error).toContain(field)
          }
          expect(yield* call(client, "list_providers")).toMatchObject({ data: { providers: [] } })
          client.close()
        })
      )

      it.scoped("concurrent save_tokens on one key lose no field", () =>
        Effect.gen(function* () {
          const server = yield* harness.start()
          yield* server.seedToken("p", "default", token())
          const clients = yield* Effect.all(Array.from({ length: 4 }, () => open(server)))
          const replies = yield* Effect.all(
            Array.from({ length: 40 }, (_, i) =>
              call(clients[i % 4]!, "save_token", {
                provider: "p",
                token: { access_token: `at-${i}`, expiry: i, token_type: "Bearer", [`field_${i}`]: i }
              })
            ),
            { concurrency: "unbounded" }
          )
          expect(replies.every((r) => r.ok)).toBe(true)
          const stored = yield* server.readStored("p", "default")
          for (let i = 0; i < 40; i++) expect(stored?.[`field_${i}`]).toBe(i)
          expect(stored?.refresh_token).toBe("rt-secret-1")
          for (const client of clients) client.close()
        })
      )

      it.scoped("remove_token deletes, and succeeds when nothing was stored", () =>
        Effect.gen(function* () {
          const server = yield* harness.start()
          yield* server.seedToken("p", "b", token())
          const client = yield* open(server)
          expect(yield* call(client, "remove_token", { provider: "p", bucket: "b" })).toMatchObject({
            ok: true,
            data: {}
          })
          expect(yield* server.readStored("p", "b")).toBeUndefined()
          expect((yield* call(client, "get_token", { provider: "p", bucket: "b" })).code).toBe("NOT_FOUND")
          expect(yield* call(client, "remove_token", { provider: "never" })).toMatchObject({
            ok: true,
            data: {}
          })
          client.close()
        })
      )

      it.scoped("list_providers, list_buckets and get_bucket_stats", () =>
        Effect.gen(function* () {
          const server = yield* harness.start()
          yield* server.seedToken("anthropic", "default", token())
          yield* server.seedToken("anthropic", "work", token())
          yield* server.seedToken("openai", "default", token())
          const client = yield* open(server)
          expect((yield* call(client, "list_providers", {})).data.providers.sort()).toEqual([
            "anthropic",
            "openai"
          ])
          expect(
            (yield* call(client, "list_buckets", { provider: "anthropic" })).data.buckets.sort()
          ).toEqual(["default", "work"])
          expect((yield* call(client, "list_buckets", { provider: "nobody" })).data).toEqual({ buckets: [] })
          expect(
            (yield* call(client, "get_bucket_stats", { provider: "anthropic", bucket: "work" })).data
          ).toEqual({
            bucket: "work",
            requestCount: 0,
            percentage: 0
          })
          expect((yield* call(client, "get_bucket_stats", { provider: "anthropic" })).data.bucket).toBe(
            "default"
          )
          expect((yield* call(client, "get_bucket_stats", { provider: "openai", bucket: "x" })).code).toBe(
            "NOT_FOUND"
          )
          client.close()
        })
      )
    }
  )
}

describe("a store that fails", () => {
  it.scoped(
    "answers INTERNAL_ERROR with a fixed text; the host log has the operation, reason and errno code",
    () =>
      Effect.gen(function* () {
        const failing = Layer.scoped(
          TokenStore,
          Effect.map(MemoryStores.makeTokenStore, (store) => ({
            ...store,
            cached: () => Option.none(),
            get: () =>
              Effect.fail(
                StoreFailure.io("get", Object.assign(new Error("/secret/path SECRET-X"), { code: "EIO" }))
              )
          }))
        )
        const server = yield* startServer({ stores: Layer.merge(failing, MemoryStores.keyStorageLayer) })
        const client = yield* open(server)
        const reply = yield* call(client, "get_token", { provider: "broken" }, "f-1")
        expect(reply).toEqual({
          v: 1,
          id: "f-1",
          ok: false,
          code: "INTERNAL_ERROR",
          error: "credential store unavailable"
        })
        expect(server.audit.events.filter((event) => event.message === "store call failed")).toEqual([
          {
            level: "Error",
            message: "store call failed",
            fields: { op: "get_token", operation: "get", reason: "Io", code: "EIO" }
          }
        ])
        expect(JSON.stringify(server.audit.events)).not.toContain("SECRET-X")
        client.close()
      })
  )

  it.scoped(
    "a file where a provider's directory belongs is never read: reads find nothing, writes are refused; nothing of it logged",
    () =>
      Effect.gen(function* () {
        const server = yield* startServer()
        fs.mkdirSync(path.join(server.dataDir, "tokens"), { recursive: true })
        fs.writeFileSync(path.join(server.dataDir, "tokens", "broken"), "not a directory SECRET-X")
        const client = yield* open(server)
        const read = yield* call(client, "get_token", { provider: "broken" }, "f-2")
        expect(read).toMatchObject({ id: "f-2", ok: false, code: "NOT_FOUND" })
        const written = yield* call(
          client,
          "save_token",
          { provider: "broken", token: { access_token: "a", expiry: 1, token_type: "Bearer" } },
          "f-3"
        )
        expect(written).toMatchObject({
          id: "f-3",
          ok: false,
          code: "INTERNAL_ERROR",
          error: "credential store unavailable"
        })
        expect(server.audit.events.filter((event) => event.message === "store call failed")).toEqual([
          {
            level: "Error",
            message: "store call failed",
            fields: { op: "save_token", operation: "lock", reason: "Unsafe" }
          }
        ])
        expect(JSON.stringify(server.audit.events)).not.toContain("SECRET-X")
        client.close()
      })
  )
})

for (const harness of SOCKET_HARNESSES) {
  describe.skipIf(harness.missing !== undefined)(harnessTitle(harness, "API key operations"), () => {
    it.scoped("get_api_key, has_api_key, list_api_keys", () =>
      Effect.gen(function* () {
        const server = yield* harness.start()
        yield* server.seedKey("openai", "sk-secret-value")
        yield* server.seedKey("gemini@work", "g-secret")
        const client = yield* open(server)
        expect((yield* call(client, "get_api_key", { name: "openai" })).data).toEqual({
          key: "sk-secret-value"
        })
        expect((yield* call(client, "get_api_key", { name: "nope" })).code).toBe("NOT_FOUND")
        expect((yield* call(client, "has_api_key", { name: "openai" })).data).toEqual({ exists: true })
        expect((yield* call(client, "has_api_key", { name: "nope" })).data).toEqual({ exists: false })
        expect((yield* call(client, "list_api_keys")).data.keys.sort()).toEqual(["gemini@work", "openai"])
        client.close()
      })
    )
  })
}

describe("requests that fail validation (PROTOCOL.md §5, §8, §14)", () => {
  it.scoped("ids: unusable → INVALID_REQUEST without id; usable id is echoed on every failure", () =>
    Effect.gen(function* () {
      const server = yield* startServer()
      const client = yield* open(server)
      const noId = async (message: Json) => {
        client.send(message)
        return client.nextFrame()
      }
      for (const bad of [
        { v: 1, op: "list_providers" },
        { v: 1, id: "", op: "list_providers" },
        { v: 1, id: 7, op: "list_providers" },
        { v: 1, id: "x".repeat(129), op: "list_providers" }
      ]) {
        const reply = yield* Effect.promise(() => noId(bad))
        expect(reply).toMatchObject({ v: 1, ok: false, code: "INVALID_REQUEST" })
        expect("id" in reply).toBe(false)
      }
      const longest = "y".repeat(128)
      expect((yield* call(client, "list_providers", {}, longest)).ok).toBe(true)
      const emojiId = "😀".repeat(64)
      expect((yield* call(client, "list_providers", {}, emojiId)).ok).toBe(true)
      for (const [message, field] of [
        [{ v: 1, id: "q1", op: "no_such_op" }, "op"],
        [{ v: 1, id: "q2" }, "op"],
        [{ id: "q3", op: "list_providers" }, "v"],
        [{ v: 2, id: "q4", op: "list_providers" }, "v"],
        [{ v: 1, id: "q5", op: "get_token", payload: { provider: "a", bucket: null } }, "bucket"],
        [{ v: 1, id: "q6", op: "get_token", payload: null }, "payload"],
        [{ v: 1, id: "q7", op: "get_token", payload: {} }, "provider"],
        [{ v: 1, id: "q8", op: "get_api_key", payload: { name: "a/b" } }, "name"]
      ] as const) {
        client.send(message)
        const reply = yield* Effect.promise(() => client.frameWhere((f) => f.id === message.id))
        expect(reply).toMatchObject({ v: 1, id: message.id, ok: false, code: "INVALID_REQUEST" })
        expect(reply.error).toContain(field)
      }
      client.close()
    })
  )

  it.scoped("logins on a server without providers: PROVIDER_NOT_FOUND, unknown sessions not found", () =>
    Effect.gen(function* () {
      const server = yield* startServer()
      const client = yield* open(server)
      expect(yield* call(client, "oauth_initiate", { provider: "p" })).toMatchObject({
        ok: false,
        code: "PROVIDER_NOT_FOUND",
        error: "provider not configured on the host"
      })
      for (const op of ["oauth_exchange", "oauth_poll"]) {
        expect(yield* call(client, op, { session_id: "s", code: "c" })).toMatchObject({
          ok: false,
          code: "SESSION_NOT_FOUND",
          error: "login session not found"
        })
      }
      expect(yield* call(client, "oauth_cancel", { session_id: "s" })).toMatchObject({ ok: true, data: {} })
      client.close()
    })
  )

  it.scoped("bad JSON after the handshake: INVALID_REQUEST without id, and the connection stays usable", () =>
    Effect.gen(function* () {
      const server = yield* startServer()
      const client = yield* open(server)
      for (const bytes of ["{oops", "[]", "42", "null", '"str"']) {
        client.send(bytes)
        const reply = yield* Effect.promise(() => client.nextFrame())
        expect(reply).toEqual({
          v: 1,
          ok: false,
          code: "INVALID_REQUEST",
          error: "frame is not a JSON object"
        })
      }
      expect((yield* call(client, "list_providers")).ok).toBe(true)
      client.close()
    })
  )

  it.scoped(
    "omitted payload is {}; unknown envelope and payload fields are ignored; duplicate ids each answered",
    () =>
      Effect.gen(function* () {
        const server = yield* startServer()
        yield* seedToken(server.dataDir, "p", "default", token())
        const client = yield* open(server)
        expect((yield* call(client, "list_api_keys")).ok).toBe(true)
        client.send({ v: 1, id: "dup", op: "get_token", payload: { provider: "p", junk: true }, extra: 1 })
        client.send({ v: 1, id: "dup", op: "get_token", payload: { provider: "p" } })
        const first = yield* Effect.promise(() => client.frameWhere((f) => f.id === "dup"))
        const second = yield* Effect.promise(() => client.frameWhere((f) => f.id === "dup"))
        expect(first.ok && second.ok).toBe(true)
        client.close()
      })
  )

  it.scoped("path-traversal names are refused and nothing is written outside the data dir", () =>
    Effect.gen(function* () {
      // 66 requests in a burst: the rate limit is not what this test is about.
      const server = yield* startServer({ rateLimit: 0 })
      const client = yield* open(server)
      const root = path.dirname(server.dataDir)
      const before = listTree(root)
      for (const name of [
        "../evil",
        "..",
        ".",
        "a/b",
        "a\\b",
        ".hidden",
        "-flag",
        "x".repeat(129),
        "",
        "a\u0000b",
        "%2e%2e"
      ]) {
        const t = { access_token: "a", expiry: 1, token_type: "Bearer" }
        for (const [op, payload] of [
          ["save_token", { provider: name, token: t }],
          ["save_token", { provider: "p", bucket: name, token: t }],
          ["get_token", { provider: name }],
          ["remove_token", { provider: "p", bucket: name }],
          ["list_buckets", { provider: name }],
          ["get_api_key", { name }]
        ] as const) {
          const reply = yield* call(client, op, payload)
          expect(reply.code, `${op} ${JSON.stringify(name)}`).toBe("INVALID_REQUEST")
        }
      }
      expect(listTree(root).filter((p) => !p.includes(`${path.sep}sock${path.sep}`))).toEqual(
        before.filter((p) => !p.includes(`${path.sep}sock${path.sep}`))
      )
      client.close()
    })
  )
})

const listTree = (dir: string): Array<string> =>
  fs
    .readdirSync(dir, { recursive: true, encoding: "utf8" })
    .map((p) => path.join(dir, p))
    .sort()
