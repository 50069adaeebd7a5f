import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Scope from "effect/Scope"
import * as TestClock from "effect/TestClock"
import * as FileKeyStorage from "../src/layers/FileKeyStorage.js"
import * as FileTokenStore from "../src/layers/FileTokenStore.js"
import { encodeFrame } from "../src/protocol/frame.js"
import { MAX_ADMIN_CONNECTIONS } from "../src/server/admin/admin-server.js"
import { MAX_WAITING } from "../src/services/Confirmations.js"
import { Notifier } from "../src/services/Notifier.js"
import { FrameClient, type Json } from "./support/frame-client.js"
import { startServer, type TestServer, type TestServerOptions } from "./support/server.js"
import { awaitTimer } from "./support/test-clock.js"

/**
 * The host-only admin socket (status, live policy, confirm on first use) of
 * a real server on real sockets, on the TestClock.
 */

const token = { access_token: "at-1", expiry: 2_000_000_000, token_type: "Bearer", refresh_token: "rt-1" }

const seeded = (options: TestServerOptions = {}) =>
  Effect.gen(function* () {
    const server = yield* startServer(options)
    yield* Effect.scoped(
      Effect.gen(function* () {
        const tokens = yield* FileTokenStore.make(server.dataDir)
        for (const provider of ["anthropic", "openai"])
          yield* tokens.save({ provider, bucket: "default" }, token)
        yield* (yield* FileKeyStorage.make(server.dataDir)).set("openai", "sk-1")
      })
    )
    return server
  })

/** A client closed with the test's scope, before the server stops (so nothing it asked is left to drain). */
const open = (socketPath: string, handshake?: Json) =>
  Effect.acquireRelease(
    Effect.promise(() => FrameClient.open(socketPath, handshake)),
    (client) => Effect.sync(() => client.close())
  )
const call = (client: FrameClient, op: string, payload: Json = {}) =>
  Effect.promise(() => client.request(op, payload))
const admin = (server: TestServer) => open(server.adminSocketPath)

describe("the admin socket", () => {
  it.scoped(
    "lives in {dataDir}/run (0700), is 0600, is not in the socket directory, and goes with the server",
    () =>
      Effect.gen(function* () {
        const scope = yield* Scope.make()
        const server = yield* startServer().pipe(Scope.extend(scope))
        expect(path.dirname(server.adminSocketPath)).toBe(path.join(server.dataDir, "run"))
        expect(path.basename(server.adminSocketPath)).toBe(`admin-${process.pid}.sock`)
        expect(fs.statSync(server.adminSocketPath).mode & 0o777).toBe(0o600)
        expect(fs.statSync(path.dirname(server.adminSocketPath)).mode & 0o777).toBe(0o700)
        expect(fs.readdirSync(server.socketDir).some((name) => name.includes("admin"))).toBe(false)
        yield* Scope.close(scope, Exit.void)
        expect(fs.existsSync(server.adminSocketPath)).toBe(false)
      })
  )

  it.scoped("each socket knows only its own operations: INVALID_REQUEST for the other's", () =>
    Effect.gen(function* () {
      const server = yield* seeded()
      const sandbox = yield* open(server.socketPath)
      const host = yield* admin(server)
      for (const op of ["status", "policy_show", "policy_change", "approvals", "approve"]) {
        expect(yield* call(sandbox, op), op).toMatchObject({
          ok: false,
          code: "INVALID_REQUEST",
          error: "op is not a known operation"
        })
      }
      for (const [op, payload] of [
        ["get_token", { provider: "anthropic" }],
        ["get_api_key", { name: "openai" }],
        ["list_providers", {}]
      ] as const) {
        expect(yield* call(host, op, payload), op).toMatchObject({ ok: false, code: "INVALID_REQUEST" })
      }
      // The sandbox connection still works, and its refusals were counted like any request.
      expect((yield* call(sandbox, "get_token", { provider: "anthropic" })).ok).toBe(true)
    })
  )

  it.scoped("status shows the open connections with their peer and requests by op, and the counters", () =>
    Effect.gen(function* () {
      const server = yield* seeded()
      const a = yield* open(server.socketPath, { minVersion: 1, maxVersion: 2 })
      const b = yield* open(server.socketPath)
      for (let i = 0; i < 3; i++) yield* call(a, "get_token", { provider: "anthropic" })
      yield* call(b, "list_providers")
      const status = (yield* call(yield* admin(server), "status")).data
      expect(status.pid).toBe(process.pid)
      expect(status.sockets).toEqual({ sandbox: server.socketPath, admin: server.adminSocketPath })
      const connections = [...status.connections].sort((x: Json, y: Json) => x.version - y.version)
      expect(connections).toEqual([
        expect.objectContaining({
          peerPid: process.pid,
          version: 1,
          requests: { list_providers: 1 },
          inFlight: 0
        }),
        expect.objectContaining({ peerPid: process.pid, version: 2, requests: { get_token: 3 }, inFlight: 0 })
      ])
      expect(status.counters.requests.get_token).toEqual({ ok: 3 })
      expect(status.policy).toEqual({ allow: [], deny: [], allowKeys: [], denyKeys: [] })
      expect(status.audit.map((line: Json) => line.message)).toContain("listening")
      expect(JSON.stringify(status)).not.toMatch(/at-1|rt-1|sk-1/)
    })
  )

  it.scoped("a policy change holds at once for the next request on an open connection, and is audited", () =>
    Effect.gen(function* () {
      const server = yield* seeded()
      const sandbox = yield* open(server.socketPath)
      const host = yield* admin(server)
      expect((yield* call(sandbox, "get_token", { provider: "anthropic" })).ok).toBe(true)
      const denied = yield* call(host, "policy_change", { kind: "deny", spec: "anthropic" })
      expect(denied.data).toEqual({ allow: [], deny: ["anthropic:*"], allowKeys: [], denyKeys: [] })
      expect(yield* call(sandbox, "get_token", { provider: "anthropic" })).toMatchObject({
        ok: false,
        code: "UNAUTHORIZED",
        error: "not allowed by the access policy"
      })
      expect((yield* call(sandbox, "list_providers")).data).toEqual({ providers: ["openai"] })
      yield* call(host, "policy_change", { kind: "deny-key", spec: "openai" })
      expect((yield* call(sandbox, "get_api_key", { name: "openai" })).code).toBe("UNAUTHORIZED")
      yield* call(host, "policy_change", { kind: "allow", spec: "anthropic" })
      yield* call(host, "policy_change", { kind: "allow-key", spec: "openai" })
      expect((yield* call(sandbox, "get_token", { provider: "anthropic" })).ok).toBe(true)
      expect((yield* call(sandbox, "get_api_key", { name: "openai" })).ok).toBe(true)
      expect(yield* call(host, "policy_change", { kind: "deny", spec: "a:b:c" })).toMatchObject({
        ok: false,
        code: "INVALID_REQUEST",
        error: 'invalid token pattern "a:b:c": expected provider[:bucket]'
      })
      const changes = server.audit.events.filter((event) => event.message === "access policy changed")
      expect(changes.map((event) => event.fields)).toEqual([
        { change: "deny", spec: "anthropic" },
        { change: "deny-key", spec: "openai" },
        { change: "allow", spec: "anthropic" },
        { change: "allow-key", spec: "openai" }
      ])
    })
  )

  it.scoped("a handshake not sent in 5 s, or an oversize frame, closes an admin connection", () =>
    Effect.gen(function* () {
      const server = yield* startServer()
      const silent = yield* Effect.promise(() => FrameClient.connect(server.adminSocketPath))
      yield* awaitTimer(100)
      yield* TestClock.adjust("4900 millis")
      expect(silent.closed).toBe(false)
      yield* TestClock.adjust("200 millis")
      yield* Effect.promise(() => silent.waitClosed())
      const big = yield* admin(server)
      big.sendRaw(encodeFrame("x".repeat(70_000)))
      expect(yield* Effect.promise(() => big.nextFrame())).toMatchObject({
        ok: false,
        error: "frame too large"
      })
      yield* Effect.promise(() => big.waitClosed())
    })
  )

  it.scoped(`at most ${MAX_ADMIN_CONNECTIONS} admin connections at once; one more is closed at once`, () =>
    Effect.gen(function* () {
      const server = yield* startServer()
      for (let i = 0; i < MAX_ADMIN_CONNECTIONS; i++) yield* admin(server)
      // The clock stands still, so no deadline can be what closes it.
      const extra = yield* Effect.promise(() => FrameClient.connect(server.adminSocketPath))
      yield* Effect.promise(() => extra.waitClosed())
      const refused = server.audit.events.filter((event) => event.message === "admin connection refused")
      expect(refused.map((event) => event.fields?.reason)).toEqual(["max_connections"])
    })
  )
})

/** A notifier that keeps what it was told. */
const recordingNotifier = () => {
  const notes: Array<string> = []
  return {
    notes,
    layer: Layer.succeed(Notifier, { notify: (title, body) => notes.push(`${title}: ${body}`) })
  }
}

describe("confirm on first use (serve --confirm)", () => {
  /**
   * A server with `--confirm`. What still waits when the test ends is refused
   * before the server stops: a use waits for its answer even after its client
   * closed (a half-closed peer is still answered, §14), and the drain must not
   * wait for the TestClock.
   */
  const confirmed = () =>
    Effect.gen(function* () {
      const notifier = recordingNotifier()
      const server = yield* seeded({ confirm: true, notifier: notifier.layer })
      yield* Effect.addFinalizer(() =>
        Effect.promise(async () => {
          const host = await FrameClient.open(server.adminSocketPath)
          for (const waiting of (await host.request("approvals", {})).data.pending) {
            await host.request("approve", { id: waiting.id, answer: "deny" })
          }
          host.close()
        })
      )
      return { server, notifier, host: yield* admin(server) }
    })
  const pending = (host: FrameClient) =>
    Effect.map(call(host, "approvals"), (reply) => reply.data.pending as Array<Json>)
  const waitingFor = (host: FrameClient, count: number) =>
    Effect.gen(function* () {
      for (;;) {
        const now = yield* pending(host)
        if (now.length === count) return now
        yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 5)))
      }
    }).pipe(Effect.timeout("5 seconds"), Effect.orDie)

  it.scoped("approve once: this use goes ahead, the next one asks again; the user is notified", () =>
    Effect.gen(function* () {
      const { server, notifier, host } = yield* confirmed()
      const sandbox = yield* open(server.socketPath)
      sandbox.send({ v: 1, id: "g1", op: "get_token", payload: { provider: "anthropic" } })
      const [waiting] = yield* waitingFor(host, 1)
      expect(waiting).toMatchObject({
        credential: "token anthropic:default",
        op: "get_token",
        peerPid: process.pid
      })
      expect(waiting.secondsLeft).toBe(60)
      expect(notifier.notes).toEqual([
        `credproxy: confirm a use: process ${process.pid} wants token anthropic:default (get_token); run: credproxy approve`
      ])
      expect((yield* call(host, "approve", { id: waiting.id, answer: "once" })).data).toEqual({
        answered: true
      })
      expect(yield* Effect.promise(() => sandbox.frameWhere((f) => f.id === "g1"))).toMatchObject({
        ok: true
      })
      expect((yield* call(host, "approve", { id: waiting.id, answer: "once" })).data).toEqual({
        answered: false
      })
      sandbox.send({ v: 1, id: "g2", op: "get_token", payload: { provider: "anthropic" } })
      yield* waitingFor(host, 1)
    })
  )

  it.scoped(
    "approve for the session: later uses by that identity go ahead at once; another identity asks",
    () =>
      Effect.gen(function* () {
        const { server, host } = yield* confirmed()
        const sandbox = yield* open(server.socketPath)
        sandbox.send({ v: 1, id: "g1", op: "get_token", payload: { provider: "anthropic" } })
        const [waiting] = yield* waitingFor(host, 1)
        yield* call(host, "approve", { id: waiting.id, answer: "session" })
        expect((yield* Effect.promise(() => sandbox.frameWhere((f) => f.id === "g1"))).ok).toBe(true)
        // Same identity, another connection (a reconnect): no question.
        const again = yield* open(server.socketPath)
        expect((yield* call(again, "get_token", { provider: "anthropic" })).ok).toBe(true)
        // Another credential, or another identity (another capability token presented), asks.
        sandbox.send({ v: 1, id: "k1", op: "get_api_key", payload: { name: "openai" } })
        const other = yield* open(server.socketPath, {
          minVersion: 1,
          maxVersion: 1,
          capabilityToken: "another"
        })
        other.send({ v: 1, id: "o1", op: "get_token", payload: { provider: "anthropic" } })
        const asked = yield* waitingFor(host, 2)
        expect(asked.map((w) => w.credential).sort()).toEqual(["key openai", "token anthropic:default"])
      })
  )

  it.scoped(
    "deny, no answer within 60 s (TestClock), or a client that cancels: refused, nothing left waiting",
    () =>
      Effect.gen(function* () {
        const { server, host } = yield* confirmed()
        const sandbox = yield* open(server.socketPath)
        sandbox.send({ v: 1, id: "d", op: "get_token", payload: { provider: "anthropic" } })
        const [first] = yield* waitingFor(host, 1)
        yield* call(host, "approve", { id: first.id, answer: "deny" })
        expect(yield* Effect.promise(() => sandbox.frameWhere((f) => f.id === "d"))).toMatchObject({
          ok: false,
          code: "UNAUTHORIZED",
          error: "not confirmed on the host"
        })

        sandbox.send({ v: 1, id: "t", op: "get_api_key", payload: { name: "openai" } })
        yield* waitingFor(host, 1)
        yield* awaitTimer(60_000)
        yield* TestClock.adjust("59 seconds")
        expect(sandbox.pending).toEqual([])
        yield* TestClock.adjust("1 second")
        expect(yield* Effect.promise(() => sandbox.frameWhere((f) => f.id === "t"))).toMatchObject({
          code: "UNAUTHORIZED"
        })
        yield* waitingFor(host, 0)

        // A client that gives up (cancel, §20) withdraws the question.
        const leaving = yield* open(server.socketPath, { minVersion: 1, maxVersion: 2 })
        leaving.send({ v: 2, id: "l", op: "get_token", payload: { provider: "openai" } })
        yield* waitingFor(host, 1)
        expect((yield* call(leaving, "cancel", { targetId: "l" })).data).toEqual({ cancelled: true })
        yield* waitingFor(host, 0)
        const ended = server.audit.events.filter((event) => event.message === "use confirmation ended")
        expect(ended.map((event) => event.fields?.outcome)).toEqual(["denied", "timed out", "withdrawn"])
      })
  )

  it.scoped(
    `at most ${MAX_WAITING} uses wait at once, over every connection; one more is refused at once`,
    () =>
      Effect.gen(function* () {
        const { server, host } = yield* confirmed()
        const clients: Array<FrameClient> = []
        for (let c = 0; c < 17; c++) clients.push(yield* open(server.socketPath))
        // 17 connections × 16 uses of distinct credentials (16 is the in-flight limit of each).
        clients.forEach((client, c) => {
          for (let i = 0; i < 16; i++) {
            client.send({ v: 1, id: `u${i}`, op: "get_token", payload: { provider: `p${c * 16 + i}` } })
          }
        })
        yield* waitingFor(host, MAX_WAITING)
        const refused = yield* Effect.promise(() =>
          Promise.all(clients.slice(16).map((client) => client.frameWhere(() => true)))
        )
        expect(refused[0]).toMatchObject({ code: "UNAUTHORIZED", error: "not confirmed on the host" })
        const over = clients[16]!
        const rest = yield* Effect.promise(() =>
          Promise.all(Array.from({ length: 15 }, () => over.frameWhere(() => true)))
        )
        expect(rest.every((answer) => answer.code === "UNAUTHORIZED")).toBe(true)
        expect(
          server.audit.events.some(
            (event) => event.message === "too many uses waiting for confirmation; refused"
          )
        ).toBe(true)
      })
  )

  it.scoped("no question for what the policy refuses, for lists, or without --confirm", () =>
    Effect.gen(function* () {
      const { server, host } = yield* confirmed()
      const sandbox = yield* open(server.socketPath)
      yield* call(host, "policy_change", { kind: "deny", spec: "openai" })
      expect((yield* call(sandbox, "get_token", { provider: "openai" })).code).toBe("UNAUTHORIZED")
      expect((yield* call(sandbox, "list_providers")).ok).toBe(true)
      expect(yield* pending(host)).toEqual([])
      const plain = yield* seeded()
      const client = yield* open(plain.socketPath)
      expect((yield* call(client, "get_token", { provider: "anthropic" })).ok).toBe(true)
    })
  )
})
