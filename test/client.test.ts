import * as net from "node:net"
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Scope from "effect/Scope"
import * as TestClock from "effect/TestClock"
import { CONNECTION_LOST_MESSAGE, ProxyResponseError } from "../src/client/errors.js"
import * as ProxyClient from "../src/client/ProxyClient.js"
import { KEY_MANAGEMENT_UNAVAILABLE, ProxyProviderKeyStorage } from "../src/client/ProxyProviderKeyStorage.js"
import { ProxyTokenStore } from "../src/client/ProxyTokenStore.js"
import * as FileKeyStorage from "../src/layers/FileKeyStorage.js"
import * as FileTokenStore from "../src/layers/FileTokenStore.js"
import { encodeFrame, FrameDecoder } from "../src/protocol/frame.js"
import { startServer, type TestServer, type TestServerOptions, tempDir } from "./support/server.js"
import { gatedStores } from "./support/stores.js"
import { awaitTimer } from "./support/test-clock.js"
import { until } from "./support/until.js"

const token = {
  access_token: "at-1",
  expiry: 2_000_000_000,
  token_type: "Bearer",
  refresh_token: "rt-1",
  account_id: "a"
}

const seed = (server: TestServer) =>
  Effect.scoped(
    Effect.gen(function* () {
      const store = yield* FileTokenStore.make(server.dataDir)
      yield* store.save({ provider: "anthropic", bucket: "default" }, token)
      const keys = yield* FileKeyStorage.make(server.dataDir)
      yield* keys.set("openai", "sk-1")
      yield* keys.set("secret", "sk-2")
    })
  )

const startStoppable = (options: TestServerOptions = {}) =>
  Effect.gen(function* () {
    const scope = yield* Scope.make()
    const server = yield* startServer(options).pipe(Scope.extend(scope))
    return { server, scope }
  })

describe("ProxyClient against the real server", () => {
  it.scoped("connects lazily, then keeps one connection for concurrent requests matched by id", () =>
    Effect.gen(function* () {
      const server = yield* startServer()
      yield* seed(server)
      const client = yield* ProxyClient.make({ socketPath: server.socketPath })
      expect(server.status().connections.total).toBe(0)
      const answers = yield* Effect.all(
        Array.from({ length: 50 }, (_, i) =>
          i % 2 === 0
            ? client.request("get_token", { provider: "anthropic" })
            : client.request("get_api_key", { name: "openai" })
        ),
        { concurrency: "unbounded" }
      )
      answers.forEach((answer, i) => {
        expect(answer).toEqual(
          i % 2 === 0
            ? { access_token: "at-1", expiry: 2_000_000_000, token_type: "Bearer", account_id: "a" }
            : { key: "sk-1" }
        )
      })
      expect(server.status().connections.total).toBe(1)
    })
  )

  it.scoped("uses LLXPRT_CREDENTIAL_SOCKET by default, and fails typed when there is no socket", () =>
    Effect.gen(function* () {
      const server = yield* startServer()
      const previous = process.env.LLXPRT_CREDENTIAL_SOCKET
      yield* Effect.addFinalizer(() =>
        Effect.sync(() => {
          if (previous === undefined) delete process.env.LLXPRT_CREDENTIAL_SOCKET
          else process.env.LLXPRT_CREDENTIAL_SOCKET = previous
        })
      )
      process.env.LLXPRT_CREDENTIAL_SOCKET = server.socketPath
      const client = yield* ProxyClient.make()
      expect(yield* client.request("list_providers")).toEqual({ providers: [] })
      const nowhere = yield* ProxyClient.make({ socketPath: `${server.socketDir}/missing.sock` })
      const error = yield* Effect.flip(nowhere.request("list_providers"))
      expect(error._tag).toBe("ProxyUnavailable")
    })
  )

  it.scoped("a request with no answer fails after 30 s (TestClock)", () =>
    Effect.gen(function* () {
      const gate = yield* Deferred.make<void>()
      const server = yield* startServer({
        stores: gatedStores(gate),
        config: { storeCallTimeoutMs: 120_000 }
      })
      // Registered after the server, so it runs first: the held request ends and the stop need not drain.
      yield* Effect.addFinalizer(() => Deferred.succeed(gate, undefined))
      const client = yield* ProxyClient.make({ socketPath: server.socketPath })
      yield* client.request("list_api_keys")
      const pending = yield* Effect.fork(client.request("get_token", { provider: "p" }))
      yield* awaitTimer(30_000)
      yield* TestClock.adjust("29 seconds")
      expect(pending.unsafePoll()).toBeNull()
      yield* TestClock.adjust("1 second")
      const error = yield* Effect.flip(Fiber.join(pending))
      expect(error._tag).toBe("RequestTimeout")
      expect(yield* client.request("list_api_keys")).toEqual({ keys: [] })
    })
  )

  it.scoped("speaks version 2, and cancels on the proxy what it stops waiting for (deadline or caller)", () =>
    Effect.gen(function* () {
      const gate = yield* Deferred.make<void>()
      const server = yield* startServer({
        stores: gatedStores(gate),
        config: { storeCallTimeoutMs: 120_000 }
      })
      yield* Effect.addFinalizer(() => Deferred.succeed(gate, undefined))
      const client = yield* ProxyClient.make({ socketPath: server.socketPath })
      yield* client.request("list_api_keys")
      expect(server.status().requests.list_api_keys).toEqual({ ok: 1 })

      // Its deadline passes: the proxy is told, answers the request CANCELLED and stops its work.
      const timedOut = yield* Effect.fork(client.request("get_token", { provider: "p" }))
      yield* Effect.promise(() => until(() => server.status().requestsInFlight === 1))
      yield* awaitTimer(30_000)
      yield* TestClock.adjust("30 seconds")
      expect((yield* Effect.flip(Fiber.join(timedOut)))._tag).toBe("RequestTimeout")
      yield* Effect.promise(() => until(() => server.status().requestsInFlight === 0))
      expect(server.status().requests.cancel).toEqual({ ok: 1 })

      // Its caller gives up: the same.
      const abandoned = yield* Effect.fork(client.request("get_token", { provider: "p" }))
      yield* Effect.promise(() => until(() => server.status().requestsInFlight === 1))
      yield* Fiber.interrupt(abandoned)
      yield* Effect.promise(() => until(() => server.status().requestsInFlight === 0))
      expect(server.status().requests.cancel).toEqual({ ok: 2 })
      expect(server.status().requests.get_token).toEqual({ CANCELLED: 2 })
      expect(yield* client.request("list_api_keys")).toEqual({ keys: [] })
    })
  )

  it.scoped("closes itself after 5 min idle and reconnects with a fresh handshake (TestClock)", () =>
    Effect.gen(function* () {
      const server = yield* startServer()
      const client = yield* ProxyClient.make({ socketPath: server.socketPath })
      yield* client.request("list_api_keys")
      yield* awaitTimer(5 * 60_000)
      yield* TestClock.adjust("4 minutes")
      expect(server.status().connections.open).toBe(1)
      yield* client.request("list_api_keys")
      yield* awaitTimer(5 * 60_000)
      yield* TestClock.adjust("5 minutes")
      yield* Effect.promise(() => until(() => server.status().connections.open === 0))
      expect(yield* client.request("list_providers")).toEqual({ providers: [] })
      expect(server.status().connections.total).toBe(2)
    })
  )

  it.scoped(
    "a lost connection fails pending and later requests with the exact message, and never reconnects",
    () =>
      Effect.gen(function* () {
        // A peer that completes the handshake, then drops the connection on the first request: the
        // requests in flight can only end through the client's loss handling.
        const root = yield* tempDir()
        const socketPath = path.join(root, "fake.sock")
        let connections = 0
        const fake = net.createServer((socket) => {
          connections++
          const decoder = new FrameDecoder()
          socket.on("data", (chunk: Buffer) => {
            decoder.push(chunk)
            for (let step = decoder.next(); step._tag === "Frame"; step = decoder.next()) {
              const frame = JSON.parse(step.payload.toString("utf8"))
              if (frame.op === "handshake") {
                socket.write(encodeFrame('{"v":1,"op":"handshake","ok":true,"data":{"version":1}}'))
              } else {
                socket.destroy()
              }
            }
          })
        })
        yield* Effect.acquireRelease(
          Effect.promise(() => new Promise<void>((resolve) => fake.listen(socketPath, resolve))),
          () => Effect.sync(() => fake.close())
        )
        const client = yield* ProxyClient.make({ socketPath })
        const both = yield* Effect.all([client.request("list_api_keys"), client.request("list_providers")], {
          concurrency: "unbounded",
          mode: "either"
        })
        for (const outcome of both) {
          expect(outcome._tag).toBe("Left")
          if (outcome._tag === "Left") expect(outcome.left.message).toBe(CONNECTION_LOST_MESSAGE)
        }
        const later = yield* Effect.flip(client.request("list_api_keys"))
        expect(later._tag).toBe("ConnectionLost")
        expect(later.message).toBe("Credential proxy connection lost. Restart the session.")
        expect(connections).toBe(1)
      })
  )

  it.scoped("the real server stopping mid-session: the next request fails with the exact message", () =>
    Effect.gen(function* () {
      const { server, scope } = yield* startStoppable()
      const client = yield* ProxyClient.make({ socketPath: server.socketPath })
      yield* client.request("list_api_keys")
      yield* Scope.close(scope, Exit.void)
      yield* Effect.promise(() => until(() => server.status().connections.open === 0))
      const lost = yield* Effect.flip(client.request("list_api_keys"))
      expect(lost.message).toBe(CONNECTION_LOST_MESSAGE)
    })
  )
})

describe("drop-in Promise stores", () => {
  it.scoped("translate every outcome: values, null on NOT_FOUND, errors carrying the wire code", () =>
    Effect.gen(function* () {
      const server = yield* startServer({
        allow: ["anthropic", "openai"],
        allowKeys: ["openai", "missing"],
        rateLimit: 1000
      })
      yield* seed(server)
      const tokens = new ProxyTokenStore({ socketPath: server.socketPath })
      const keys = new ProxyProviderKeyStorage({ socketPath: server.socketPath })
      yield* Effect.addFinalizer(() => Effect.promise(() => Promise.all([tokens.dispose(), keys.dispose()])))
      yield* Effect.promise(async () => {
        expect(await tokens.getToken("anthropic")).toEqual({
          access_token: "at-1",
          expiry: 2_000_000_000,
          token_type: "Bearer",
          account_id: "a"
        })
        expect(await tokens.getToken("anthropic", "work")).toBeNull()
        await tokens.saveToken(
          "anthropic",
          { access_token: "at-2", expiry: 1, token_type: "Bearer", refresh_token: "sandbox" },
          "work"
        )
        expect(await tokens.getToken("anthropic", "work")).toEqual({
          access_token: "at-2",
          expiry: 1,
          token_type: "Bearer"
        })
        expect(await tokens.listProviders()).toEqual(["anthropic"])
        expect(await tokens.listBuckets("anthropic")).toEqual(["default", "work"])
        expect(await tokens.getBucketStats("anthropic", "work")).toEqual({
          bucket: "work",
          requestCount: 0,
          percentage: 0
        })
        expect(await tokens.getBucketStats("anthropic", "nope")).toBeNull()
        await tokens.removeToken("anthropic", "work")
        await tokens.removeToken("anthropic", "never-there")
        expect(await tokens.getToken("anthropic", "work")).toBeNull()
        expect(await tokens.acquireRefreshLock("anthropic")).toBe(true)
        await tokens.releaseRefreshLock("anthropic")
        const unauthorized = await tokens.getToken("gemini").catch((e: unknown) => e)
        expect(unauthorized).toBeInstanceOf(ProxyResponseError)
        expect((unauthorized as ProxyResponseError).code).toBe("UNAUTHORIZED")
        const invalid = await tokens.getToken("../etc").catch((e: unknown) => e)
        expect((invalid as ProxyResponseError).code).toBe("INVALID_REQUEST")
        const refresh = await tokens.listBuckets("gemini").catch((e: unknown) => e)
        expect((refresh as ProxyResponseError).code).toBe("UNAUTHORIZED")

        expect(await keys.getKey("openai")).toBe("sk-1")
        expect(await keys.getKey("missing")).toBeNull()
        expect(await keys.hasKey("openai")).toBe(true)
        expect(await keys.listKeys()).toEqual(["openai"])
        expect(((await keys.getKey("secret").catch((e: unknown) => e)) as ProxyResponseError).code).toBe(
          "UNAUTHORIZED"
        )
        await expect(keys.saveKey("openai", "x")).rejects.toThrow(KEY_MANAGEMENT_UNAVAILABLE)
        await expect(keys.deleteKey("openai")).rejects.toThrow(KEY_MANAGEMENT_UNAVAILABLE)
      })
    })
  )

  it.scoped("RATE_LIMITED surfaces with its code and retryAfter", () =>
    Effect.gen(function* () {
      const server = yield* startServer({ rateLimit: 2 })
      const keys = new ProxyProviderKeyStorage({ socketPath: server.socketPath })
      yield* Effect.addFinalizer(() => Effect.promise(() => keys.dispose()))
      const outcomes = yield* Effect.promise(() =>
        Promise.allSettled([keys.listKeys(), keys.listKeys(), keys.listKeys()])
      )
      expect(outcomes.filter((o) => o.status === "fulfilled")).toHaveLength(2)
      const rejected = outcomes.filter((o) => o.status === "rejected")
      expect(rejected).toHaveLength(1)
      const limited = (rejected[0] as PromiseRejectedResult).reason as ProxyResponseError
      expect(limited).toBeInstanceOf(ProxyResponseError)
      expect(limited.code).toBe("RATE_LIMITED")
      // Two a second and the clock stands still: the third may go in half a second.
      expect(limited.retryAfter).toBe(0.5)
    })
  )
})

describe("ProxyClient against a silent peer", () => {
  it.scoped(
    "a proxy that accepts but never answers the handshake: the request still ends after 30 s (TestClock)",
    () =>
      Effect.gen(function* () {
        const root = yield* tempDir()
        const socketPath = path.join(root, "silent.sock")
        const sockets: Array<net.Socket> = []
        const silent = net.createServer((socket) => {
          sockets.push(socket)
        })
        yield* Effect.acquireRelease(
          Effect.promise(() => new Promise<void>((resolve) => silent.listen(socketPath, resolve))),
          () =>
            Effect.sync(() => {
              for (const socket of sockets) socket.destroy()
              silent.close()
            })
        )
        const client = yield* ProxyClient.make({ socketPath })
        const pending = yield* Effect.fork(client.request("list_api_keys"))
        yield* awaitTimer(30_000)
        yield* TestClock.adjust("30 seconds")
        const error = yield* Effect.flip(Fiber.join(pending))
        expect(error._tag).toBe("RequestTimeout")
      })
  )
})

/**
 * A peer that speaks the handshake correctly, then answers every request
 * with `reply` (raw bytes): what a broken or hostile proxy could send.
 */
const brokenProxy = (reply: Buffer) =>
  Effect.gen(function* () {
    const socketPath = path.join(yield* tempDir(), "broken.sock")
    const sockets: Array<net.Socket> = []
    const server = net.createServer((socket) => {
      sockets.push(socket)
      const decoder = new FrameDecoder()
      let handshaken = false
      socket.on("data", (chunk: Buffer) => {
        decoder.push(chunk)
        for (let step = decoder.next(); step._tag === "Frame"; step = decoder.next()) {
          if (handshaken) socket.write(reply)
          else
            socket.write(
              encodeFrame(JSON.stringify({ v: 1, op: "handshake", ok: true, data: { version: 1 } }))
            )
          handshaken = true
        }
      })
      socket.on("error", () => {})
    })
    yield* Effect.acquireRelease(
      Effect.promise(() => new Promise<void>((resolve) => server.listen(socketPath, resolve))),
      () =>
        Effect.sync(() => {
          for (const socket of sockets) socket.destroy()
          server.close()
        })
    )
    return socketPath
  })

describe("ProxyClient against a proxy that breaks the protocol", () => {
  const header = (length: number) => {
    const bytes = Buffer.alloc(4)
    bytes.writeUInt32BE(length)
    return bytes
  }
  for (const [what, reply, reason] of [
    ["a frame over the size limit", header(0xffffffff), "OversizeFrame"],
    ["JSON that is not an object", encodeFrame("42"), "NotJson"],
    ["null", encodeFrame("null"), "NotJson"],
    ["bytes that are not JSON", encodeFrame("{oops"), "NotJson"],
    ["an object that is not an answer", encodeFrame(JSON.stringify({ id: "c1", hello: true })), "NotAnAnswer"]
  ] as const) {
    it.scoped(
      `${what}: every request fails with a clear error, the connection is given up, nothing throws`,
      () =>
        Effect.gen(function* () {
          const socketPath = yield* brokenProxy(reply)
          const client = yield* ProxyClient.make({ socketPath })
          const first = yield* Effect.flip(client.request("list_api_keys"))
          expect(first).toMatchObject({ _tag: "ProtocolViolation", reason })
          expect(first.message).toMatch(/^Credential proxy sent .+\. Restart the session\.$/)
          // Given up like a lost connection: later requests fail at once instead of reconnecting.
          const later = yield* Effect.flip(client.request("list_api_keys"))
          expect(later._tag).toBe("ConnectionLost")
        })
    )
  }

  it.scoped("an answer whose data does not fit the operation fails that request with UnexpectedData", () =>
    Effect.gen(function* () {
      const wrong = encodeFrame(
        JSON.stringify({ v: 1, id: "c1", ok: true, data: { providers: "not a list" } })
      )
      const socketPath = yield* brokenProxy(wrong)
      const client = yield* ProxyClient.make({ socketPath })
      const error = yield* Effect.flip(client.call("list_providers", {}))
      expect(error).toMatchObject({ _tag: "ProtocolViolation", reason: "UnexpectedData" })
    })
  )
})
