import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as TestClock from "effect/TestClock"
import fc from "fast-check"
import { encodeFrame, FrameDecoder } from "../src/protocol/frame.js"
import { FrameClient } from "./support/frame-client.js"
import { startServer } from "./support/server.js"
import { splitAt } from "./support/split.js"

const request = (i: number) =>
  encodeFrame(JSON.stringify({ v: 1, id: `f${i}`, op: "list_api_keys", payload: {} }))
const HANDSHAKE = encodeFrame(
  JSON.stringify({ v: 1, op: "handshake", payload: { minVersion: 1, maxVersion: 1 } })
)

describe("frame decoder", () => {
  it("cuts the same frames from any split or coalescing of the byte stream", () => {
    fc.assert(
      fc.property(
        fc.array(fc.string({ maxLength: 300 }), { minLength: 1, maxLength: 20 }),
        fc.array(fc.nat(), { maxLength: 40 }),
        (payloads, cuts) => {
          const stream = Buffer.concat(payloads.map((p) => encodeFrame(JSON.stringify(p))))
          const decoder = new FrameDecoder()
          const out: Array<string> = []
          for (const part of splitAt(stream, cuts)) {
            decoder.push(part)
            for (let step = decoder.next(); step._tag === "Frame"; step = decoder.next()) {
              out.push(JSON.parse(step.payload.toString("utf8")))
            }
          }
          expect(out).toEqual(payloads)
          expect(decoder.bufferedBytes).toBe(0)
        }
      )
    )
  })

  it("refuses a length over the limit from the header alone, before the payload arrives", () => {
    const decoder = new FrameDecoder(65536)
    const header = Buffer.alloc(4)
    header.writeUInt32BE(65537)
    decoder.push(header)
    expect(decoder.next()).toEqual({ _tag: "Oversize", length: 65537 })
    const exact = new FrameDecoder(65536)
    header.writeUInt32BE(65536)
    exact.push(header)
    expect(exact.next()._tag).toBe("NeedMore")
  })
})

describe("framing over the socket (PROTOCOL.md §3)", () => {
  it.scoped("every request is answered for random splits of a pipelined stream (property)", () =>
    Effect.gen(function* () {
      const server = yield* startServer()
      yield* Effect.promise(() =>
        fc.assert(
          fc.asyncProperty(
            fc.integer({ min: 1, max: 12 }),
            fc.array(fc.nat(), { maxLength: 30 }),
            async (n, cuts) => {
              const client = await FrameClient.connect(server.socketPath)
              const stream = Buffer.concat([HANDSHAKE, ...Array.from({ length: n }, (_, i) => request(i))])
              for (const part of splitAt(stream, cuts)) {
                client.sendRaw(part)
                await new Promise((resolve) => setImmediate(resolve))
              }
              expect((await client.nextFrame()).data).toEqual({ version: 1 })
              for (let i = 0; i < n; i++)
                expect((await client.frameWhere((f) => f.id === `f${i}`)).ok).toBe(true)
              client.close()
            }
          ),
          { numRuns: 40 }
        )
      )
    })
  )

  it.scoped(
    "a frame of exactly 65536 bytes is accepted; a larger declared length closes the connection",
    () =>
      Effect.gen(function* () {
        const server = yield* startServer()
        const client = yield* Effect.promise(() => FrameClient.open(server.socketPath))
        const base = JSON.stringify({ v: 1, id: "big", op: "list_api_keys", payload: {}, pad: "" })
        const padded = base.replace('"pad":""', `"pad":"${"x".repeat(65536 - Buffer.byteLength(base))}"`)
        expect(Buffer.byteLength(padded)).toBe(65536)
        client.send(padded)
        expect((yield* Effect.promise(() => client.frameWhere((f) => f.id === "big"))).ok).toBe(true)
        const header = Buffer.alloc(4)
        header.writeUInt32BE(65537)
        client.sendRaw(header)
        yield* Effect.promise(() => client.waitClosed())
        for (const frame of client.pending) expect(frame.id).toBeUndefined()
      })
  )

  it.scoped("a frame whose payload stalls is closed after 5 s from its first byte (TestClock)", () =>
    Effect.gen(function* () {
      const server = yield* startServer()
      const stalled = yield* Effect.promise(() => FrameClient.open(server.socketPath))
      const shortHeader = yield* Effect.promise(() => FrameClient.open(server.socketPath))
      const slowButFine = yield* Effect.promise(() => FrameClient.open(server.socketPath))
      const frame = request(1)
      // A complete request in the same write: its answer proves the partial bytes behind it were read.
      stalled.sendRaw(Buffer.concat([request(0), frame.subarray(0, 10)]))
      shortHeader.sendRaw(Buffer.concat([request(0), frame.subarray(0, 2)]))
      slowButFine.sendRaw(Buffer.concat([request(0), frame.subarray(0, 10)]))
      for (const client of [stalled, shortHeader, slowButFine]) {
        yield* Effect.promise(() => client.frameWhere((f) => f.id === "f0"))
      }
      yield* TestClock.adjust("4 seconds")
      slowButFine.sendRaw(frame.subarray(10))
      expect((yield* Effect.promise(() => slowButFine.frameWhere((f) => f.id === "f1"))).ok).toBe(true)
      yield* TestClock.adjust("1200 millis")
      yield* Effect.promise(() => stalled.waitClosed())
      yield* Effect.promise(() => shortHeader.waitClosed())
      expect(stalled.pending).toEqual([])
      expect(slowButFine.closed).toBe(false)
      yield* TestClock.adjust("10 seconds")
      expect((yield* Effect.promise(() => slowButFine.request("list_api_keys"))).ok).toBe(true)
      slowButFine.close()
    })
  )

  it.scoped("a client that half-closes after sending gets every answer, then the server closes", () =>
    Effect.gen(function* () {
      const server = yield* startServer()
      const client = yield* Effect.promise(() => FrameClient.open(server.socketPath))
      client.sendRaw(Buffer.concat([request(1), request(2), request(3)]))
      client.socket.end()
      yield* Effect.promise(() => client.waitClosed())
      expect(client.pending.map((f) => f.id).sort()).toEqual(["f1", "f2", "f3"])
    })
  )
})
