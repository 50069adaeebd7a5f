import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as TestClock from "effect/TestClock"
import { FrameClient } from "./support/frame-client.js"
import { startServer } from "./support/server.js"

const connect = (path: string) => Effect.promise(() => FrameClient.connect(path))

describe("handshake (PROTOCOL.md §4)", () => {
  it.scoped("agrees on version 1 and then serves requests", () =>
    Effect.gen(function* () {
      const server = yield* startServer()
      const client = yield* connect(server.socketPath)
      const reply = yield* Effect.promise(() => client.handshake())
      expect(reply).toEqual({ v: 1, op: "handshake", ok: true, data: { version: 1 } })
      const listed = yield* Effect.promise(() => client.request("list_providers"))
      expect(listed).toMatchObject({ ok: true, data: { providers: [] } })
      client.close()
    })
  )

  it.scoped(
    "the highest version both speak: 1..2 → 2, 1..1 → 1, 2..5 → 2 (the frame's own v is not checked)",
    () =>
      Effect.gen(function* () {
        const server = yield* startServer()
        for (const [range, frameV, version] of [
          [{ minVersion: 1, maxVersion: 2 }, 2, 2],
          [{ minVersion: 1, maxVersion: 1 }, 1, 1],
          [{ minVersion: 2, maxVersion: 5 }, 5, 2],
          [{ minVersion: 0, maxVersion: 1 }, 7, 1]
        ] as const) {
          const client = yield* connect(server.socketPath)
          client.send({ v: frameV, op: "handshake", payload: range })
          const reply = yield* Effect.promise(() => client.nextFrame())
          expect(reply).toEqual({ v: version, op: "handshake", ok: true, data: { version } })
          client.close()
        }
      })
  )

  it.scoped("no common version: UNKNOWN_VERSION, then the connection is closed", () =>
    Effect.gen(function* () {
      const server = yield* startServer()
      const client = yield* connect(server.socketPath)
      const reply = yield* Effect.promise(() => client.handshake({ minVersion: 3, maxVersion: 4 }))
      expect(reply).toEqual({
        v: 1,
        op: "handshake",
        ok: false,
        code: "UNKNOWN_VERSION",
        error: "no common protocol version: this server supports versions 1 to 2"
      })
      yield* Effect.promise(() => client.waitClosed())
    })
  )

  const malformed: ReadonlyArray<[string, unknown]> = [
    ["minVersion > maxVersion", { v: 1, op: "handshake", payload: { minVersion: 2, maxVersion: 1 } }],
    ["non-integer versions", { v: 1, op: "handshake", payload: { minVersion: 1.5, maxVersion: 2 } }],
    ["missing payload", { v: 1, op: "handshake" }],
    ["not a handshake", { v: 1, id: "x", op: "get_token", payload: { provider: "a" } }]
  ]
  for (const [name, frame] of malformed) {
    it.scoped(`${name}: INVALID_REQUEST, then closed`, () =>
      Effect.gen(function* () {
        const server = yield* startServer()
        const client = yield* connect(server.socketPath)
        client.send(frame)
        const reply = yield* Effect.promise(() => client.nextFrame())
        expect(reply).toMatchObject({ ok: false, code: "INVALID_REQUEST" })
        expect(reply.id).toBeUndefined()
        yield* Effect.promise(() => client.waitClosed())
      })
    )
  }

  for (const [name, bytes] of [
    ["bad JSON", "{nope"],
    ["a JSON array", "[1,2]"],
    ["a JSON string", '"handshake"']
  ] as const) {
    it.scoped(`${name} before the handshake: closed without a frame`, () =>
      Effect.gen(function* () {
        const server = yield* startServer()
        const client = yield* connect(server.socketPath)
        client.send(bytes)
        yield* Effect.promise(() => client.waitClosed())
        expect(client.pending).toEqual([])
      })
    )
  }

  it.scoped("a connection that does not complete the handshake within 5 s is closed (TestClock)", () =>
    Effect.gen(function* () {
      const server = yield* startServer()
      const client = yield* connect(server.socketPath)
      const patient = yield* connect(server.socketPath)
      yield* TestClock.adjust("4900 millis")
      yield* Effect.promise(() => patient.handshake())
      yield* TestClock.adjust("400 millis")
      yield* Effect.promise(() => client.waitClosed())
      expect(client.pending).toEqual([])
      const reply = yield* Effect.promise(() => patient.request("list_api_keys"))
      expect(reply.ok).toBe(true)
      patient.close()
    })
  )
})
