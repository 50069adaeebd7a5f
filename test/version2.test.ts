import { describe, expect, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Scope from "effect/Scope"
import * as HostStores from "../src/layers/HostStores.js"
import { encodeFrame } from "../src/protocol/frame.js"
import type { OAuthToken } from "../src/protocol/token.js"
import { FrameClient, type Json } from "./support/frame-client.js"
import * as MemoryStores from "./support/memory-stores.js"
import { startServer, type TestServerOptions } from "./support/server.js"
import { gatedStores } from "./support/stores.js"
import { awaitTimer } from "./support/test-clock.js"
import { until } from "./support/until.js"

/**
 * Protocol version 2 (PROTOCOL.md §20): negotiation, the per-version frame
 * limit, `cancel`, and the answers while the server stops (§21); real
 * socket, TestClock.
 */

const V2 = { minVersion: 1, maxVersion: 2 }
const open = (socketPath: string, handshake?: Json) =>
  Effect.promise(() => FrameClient.open(socketPath, handshake))
const request = (client: FrameClient, op: string, payload: Json = {}, id?: string) =>
  Effect.promise(() => client.request(op, payload, id))
const answerTo = (client: FrameClient, id: string) =>
  Effect.promise(() => client.frameWhere((f) => f.id === id))

const token = (access: string): OAuthToken => ({
  access_token: access,
  expiry: 2_000_000_000,
  token_type: "Bearer",
  refresh_token: `rt-${access}`
})

/**
 * A host program's Promise store (§15) whose reads of providers named
 * `slow-read*` and writes of providers named `slow-write*` wait until
 * `release()`; it records what was saved and how many calls are waiting.
 */
const blockingHost = () => {
  const saved = new Map<string, OAuthToken>()
  let release = () => {}
  const gate = new Promise<void>((resolve) => {
    release = resolve
  })
  const waiting = { count: 0 }
  const hold = async (provider: string, slow: string) => {
    if (!provider.startsWith(slow)) return
    waiting.count++
    await gate
    waiting.count--
  }
  const store: HostStores.HostTokenStore = {
    getToken: async (provider, bucket) => {
      await hold(provider, "slow-read")
      return saved.get(`${provider}:${bucket ?? ""}`) ?? null
    },
    saveToken: async (provider, value, bucket) => {
      await hold(provider, "slow-write")
      saved.set(`${provider}:${bucket ?? ""}`, value)
    },
    removeToken: async () => {},
    listProviders: async () => [],
    listBuckets: async () => []
  }
  return { store, saved, waiting, release: () => release() }
}

const hostServer = (host: HostStores.HostTokenStore, options: TestServerOptions = {}) =>
  startServer({
    ...options,
    stores: HostStores.layer(
      { tokenStore: host },
      { tokens: MemoryStores.tokenStoreLayer, keys: MemoryStores.keyStorageLayer }
    )
  })

describe("protocol version 2 (§20)", () => {
  it.scoped("frames follow the version: a 1 MiB request is read on v2, refused (and closed) on v1", () =>
    Effect.gen(function* () {
      const server = yield* startServer()
      const big = { access_token: "a".repeat(1 << 20), expiry: 1, token_type: "Bearer" }

      const v2 = yield* open(server.socketPath, V2)
      expect(v2.version).toBe(2)
      // Read and decoded: the handler refuses the token by its own size rule, and the connection stays.
      expect(yield* request(v2, "save_token", { provider: "p", token: big })).toEqual({
        v: 2,
        id: expect.any(String),
        ok: false,
        code: "INVALID_REQUEST",
        error: "token too large: at most 16384 bytes as stored"
      })
      expect(yield* request(v2, "list_api_keys")).toMatchObject({ v: 2, ok: true, data: { keys: [] } })
      // A v1 frame on a v2 connection is refused, the connection kept.
      v2.send({ v: 1, id: "old", op: "list_api_keys", payload: {} })
      expect(yield* answerTo(v2, "old")).toEqual({
        v: 2,
        id: "old",
        ok: false,
        code: "INVALID_REQUEST",
        error: "v must be 2"
      })

      const v1 = yield* open(server.socketPath)
      expect(v1.version).toBe(1)
      v1.send({ v: 1, id: "big", op: "save_token", payload: { provider: "p", token: big } })
      expect(yield* Effect.promise(() => v1.nextFrame())).toEqual({
        v: 1,
        ok: false,
        code: "INVALID_REQUEST",
        error: "frame too large"
      })
      yield* Effect.promise(() => v1.waitClosed())
      // A v1 connection cannot cancel.
      const other = yield* open(server.socketPath)
      expect(yield* request(other, "cancel", { targetId: "x" })).toMatchObject({
        v: 1,
        ok: false,
        code: "INVALID_REQUEST"
      })
    })
  )

  it.scoped(
    "cancel of a request waiting on a blocked host store: CANCELLED for it, {cancelled:true}, its fiber gone",
    () =>
      Effect.gen(function* () {
        const host = blockingHost()
        const server = yield* hostServer(host.store)
        const client = yield* open(server.socketPath, V2)
        client.send({ v: 2, id: "slow", op: "get_token", payload: { provider: "slow-read" } })
        yield* Effect.promise(() =>
          until(() => host.waiting.count === 1, { what: "the host store to be called" })
        )
        expect(server.status().requestsInFlight).toBe(1)
        expect(yield* request(client, "cancel", { targetId: "slow" }, "c1")).toEqual({
          v: 2,
          id: "c1",
          ok: true,
          data: { cancelled: true }
        })
        // The cancelled request was answered before the cancel's own answer.
        expect(client.pending.map((frame) => frame.id)).toEqual(["slow"])
        expect(yield* answerTo(client, "slow")).toEqual({
          v: 2,
          id: "slow",
          ok: false,
          code: "CANCELLED",
          error: "request cancelled"
        })
        expect(server.status().requestsInFlight).toBe(0)
        // Cancelling it again, or an id never seen, finds nothing.
        expect((yield* request(client, "cancel", { targetId: "slow" })).data).toEqual({ cancelled: false })
        expect((yield* request(client, "cancel", { targetId: "nobody" })).data).toEqual({ cancelled: false })
        host.release()
        // Nothing more arrives for it: the next answer on the connection is the next request's.
        expect(yield* request(client, "list_api_keys", {}, "after")).toMatchObject({ id: "after", ok: true })
        expect(client.pending).toEqual([])
      })
  )

  it.scoped("the answer of a cancelled request is CANCELLED, exactly once", () =>
    Effect.gen(function* () {
      const host = blockingHost()
      const server = yield* hostServer(host.store)
      const client = yield* open(server.socketPath, V2)
      client.send({ v: 2, id: "slow", op: "get_token", payload: { provider: "slow-read" } })
      yield* Effect.promise(() =>
        until(() => host.waiting.count === 1, { what: "the host store to be called" })
      )
      client.send({ v: 2, id: "c", op: "cancel", payload: { targetId: "slow" } })
      expect(yield* answerTo(client, "slow")).toEqual({
        v: 2,
        id: "slow",
        ok: false,
        code: "CANCELLED",
        error: "request cancelled"
      })
      expect((yield* answerTo(client, "c")).data).toEqual({ cancelled: true })
      host.release()
      expect(yield* request(client, "list_api_keys", {}, "after")).toMatchObject({ ok: true })
      expect(client.pending).toEqual([])
      expect(server.status().requestsInFlight).toBe(0)
    })
  )

  /** A `save_token` of `provider` that the host's store holds up, then cancelled (and the cancel accepted). */
  const cancelledSave = (provider: string, value: string) =>
    Effect.gen(function* () {
      const host = blockingHost()
      const server = yield* hostServer(host.store)
      const client = yield* open(server.socketPath, V2)
      client.send({ v: 2, id: "save", op: "save_token", payload: { provider, token: token(value) } })
      yield* Effect.promise(() =>
        until(() => host.waiting.count === 1, { what: "the host store to be called" })
      )
      expect((yield* request(client, "cancel", { targetId: "save" })).data).toEqual({ cancelled: true })
      return { host, server, client }
    })

  it.scoped(
    "a cancelled save that already reached the store still completes; only its answer is CANCELLED",
    () =>
      Effect.gen(function* () {
        const { host, server, client } = yield* cancelledSave("slow-write", "kept")
        expect((yield* answerTo(client, "save")).code).toBe("CANCELLED")
        host.release()
        yield* Effect.promise(() =>
          until(() => host.saved.has("slow-write:"), { what: "the save to complete" })
        )
        // As sent, less the refresh token the sandbox may never set (§6).
        expect(host.saved.get("slow-write:")).toEqual({ ...token("kept"), refresh_token: undefined })
        yield* Effect.promise(() => until(() => server.status().requestsInFlight === 0))
        expect(yield* request(client, "list_api_keys", {}, "after")).toMatchObject({ ok: true })
        expect(client.pending).toEqual([])
      })
  )

  it.scoped("a cancelled save still reading the store is stopped before it writes", () =>
    Effect.gen(function* () {
      const { host, server, client } = yield* cancelledSave("slow-read", "lost")
      expect(server.status().requestsInFlight).toBe(0)
      host.release()
      yield* Effect.promise(() => until(() => host.waiting.count === 0, { what: "the host's read to end" }))
      expect(yield* request(client, "list_api_keys", {}, "after")).toMatchObject({ ok: true })
      expect(host.saved.has("slow-read:")).toBe(false)
    })
  )

  it.scoped(
    "a connection cannot cancel another's request: {cancelled:false}, and that request is answered",
    () =>
      Effect.gen(function* () {
        const host = blockingHost()
        host.saved.set("slow-read:", token("theirs"))
        const server = yield* hostServer(host.store)
        const owner = yield* open(server.socketPath, V2)
        const stranger = yield* open(server.socketPath, V2)
        owner.send({ v: 2, id: "mine", op: "get_token", payload: { provider: "slow-read" } })
        yield* Effect.promise(() =>
          until(() => host.waiting.count === 1, { what: "the host store to be called" })
        )
        expect((yield* request(stranger, "cancel", { targetId: "mine" })).data).toEqual({ cancelled: false })
        host.release()
        expect(yield* answerTo(owner, "mine")).toMatchObject({ ok: true, data: { access_token: "theirs" } })
      })
  )

  it.scoped("an answer not written yet is taken back: a get and its cancel in one write", () =>
    Effect.gen(function* () {
      const host = blockingHost()
      host.saved.set("fast:", token("quick"))
      const server = yield* hostServer(host.store)
      const client = yield* open(server.socketPath, V2)
      // First read puts the token in memory, so the next get is answered inline.
      expect((yield* request(client, "get_token", { provider: "fast" })).ok).toBe(true)
      client.sendRaw(
        Buffer.concat([
          encodeFrame(JSON.stringify({ v: 2, id: "g", op: "get_token", payload: { provider: "fast" } })),
          encodeFrame(JSON.stringify({ v: 2, id: "c", op: "cancel", payload: { targetId: "g" } }))
        ])
      )
      expect((yield* answerTo(client, "c")).data).toEqual({ cancelled: true })
      expect(yield* answerTo(client, "g")).toMatchObject({ ok: false, code: "CANCELLED" })
      expect(yield* request(client, "list_api_keys", {}, "after")).toMatchObject({ ok: true })
      expect(client.pending).toEqual([])
    })
  )
})

describe("answers while the server stops (§21)", () => {
  it.scoped(
    "a request that arrives during the drain is answered at once; the one in flight still finishes",
    () =>
      Effect.gen(function* () {
        const gate = yield* Deferred.make<void>()
        const scope = yield* Scope.make()
        const server = yield* startServer({ stores: gatedStores(gate) }).pipe(Scope.extend(scope))
        const client = yield* open(server.socketPath, V2)
        const waiting = yield* Effect.promise(() => FrameClient.connect(server.socketPath))
        client.send({ v: 2, id: "inflight", op: "get_token", payload: { provider: "p" } })
        expect((yield* request(client, "list_api_keys")).ok).toBe(true)
        const stopping = yield* Effect.fork(Scope.close(scope, Exit.void))
        yield* awaitTimer(5_000)
        // The drain has started and the clock stands still: only an immediate answer can arrive.
        expect(yield* request(client, "list_api_keys", {}, "late")).toEqual({
          v: 2,
          id: "late",
          ok: false,
          code: "INTERNAL_ERROR",
          error: "the proxy is stopping"
        })
        expect(yield* Effect.promise(() => waiting.handshake())).toMatchObject({
          ok: false,
          code: "INTERNAL_ERROR",
          error: "the proxy is stopping"
        })
        yield* Deferred.succeed(gate, undefined)
        expect(yield* answerTo(client, "inflight")).toMatchObject({ ok: false, code: "NOT_FOUND" })
        yield* Fiber.join(stopping)
      })
  )
})
