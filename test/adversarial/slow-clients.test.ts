import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as TestClock from "effect/TestClock"
import { encodeFrame } from "../../src/protocol/frame.js"
import { connectIdle, inBatches, waitForOpen } from "../support/adversarial.js"
import { FrameClient } from "../support/frame-client.js"
import { startServer } from "../support/server.js"
import { poll } from "../support/until.js"

/**
 * Slow clients against the deadlines of PROTOCOL.md §3/§4/§14, on TestClock:
 * 200 connections that dribble one byte of a frame every second and 200 that
 * never handshake are all closed by their deadlines (5 s from a frame's first
 * byte; 5 s from accept), each on its own deadline, while a well-behaved
 * client keeps getting answers throughout.
 *
 * Determinism: a cohort's deadlines start when the server has accepted its
 * connections (the server's own open count says so) and when its first
 * partial byte has arrived (sent in the same write as a complete request,
 * whose answer proves the byte behind it was read). Later bytes cannot move a
 * deadline that runs from the first byte, so whether they arrive before or
 * after a clock step does not matter. The clock moves only after that.
 */

const COHORT = 100
const request = (id: string) => encodeFrame(JSON.stringify({ v: 1, id, op: "list_api_keys", payload: {} }))

/** A handshaken client that has sent a complete request plus the first `first` bytes of a second frame. */
interface Dribbler {
  readonly client: FrameClient
  readonly frame: Buffer
  sent: number
}

const startDribblers = (socketPath: string, n: number, first: (i: number) => number) =>
  inBatches(n, 50, async (i): Promise<Dribbler> => {
    const client = await FrameClient.open(socketPath)
    const frame = request(`never-${i}`)
    const sent = first(i)
    client.sendRaw(Buffer.concat([request("sync"), frame.subarray(0, sent)]))
    const reply = await client.frameWhere((f) => f.id === "sync")
    if (reply.ok !== true) throw new Error(`sync request failed: ${JSON.stringify(reply)}`)
    return { client, frame, sent }
  })

/** One more byte of the never-finished frame, for every dribbler still open. */
const dribble = (dribblers: ReadonlyArray<Dribbler>): void => {
  for (const d of dribblers) {
    if (d.client.closed || d.sent >= d.frame.length - 1) continue
    d.client.sendRaw(d.frame.subarray(d.sent, d.sent + 1))
    d.sent++
  }
}

const allClosed = (clients: ReadonlyArray<FrameClient>) =>
  Effect.promise(() => Promise.all(clients.map((c) => c.waitClosed(10_000))))

describe("slow clients", () => {
  it.scoped(
    "200 byte-dribblers and 200 silent connections are closed by their deadlines; a steady client is served throughout",
    () =>
      Effect.gen(function* () {
        const server = yield* startServer({ config: { maxConnections: 1000 } })
        const steady = yield* Effect.promise(() => FrameClient.open(server.socketPath))
        let n = 0
        const steadyServed = Effect.promise(async () => {
          const reply = await steady.request("list_api_keys", {}, `steady-${++n}`)
          expect(reply).toEqual({ v: 1, id: `steady-${n}`, ok: true, data: { keys: [] } })
        })
        const rejected = () => server.status().connections.rejected
        /** Advances the clock by `ms`, dribbling a byte before each whole second, with the steady client served. */
        const tick = (ms: number, dribblers: ReadonlyArray<Dribbler>) =>
          Effect.gen(function* () {
            dribble(dribblers)
            yield* TestClock.adjust(ms)
            yield* steadyServed
          })

        // t = 0: cohort A. The dribblers' first write ends inside the payload (header + 1 or 2 bytes);
        // dribbling the header itself is covered by its own test below.
        const silentA = yield* Effect.promise(() => connectIdle(server.socketPath, COHORT))
        const slowA = yield* Effect.promise(() =>
          startDribblers(server.socketPath, COHORT, (i) => (i % 2 === 0 ? 5 : 6))
        )
        yield* Effect.promise(() => waitForOpen(server.status, 1 + 2 * COHORT))
        yield* steadyServed

        yield* tick(1_000, slowA)
        yield* tick(1_000, slowA)

        // t = 2 s: cohort B, whose deadlines run from now.
        const silentB = yield* Effect.promise(() => connectIdle(server.socketPath, COHORT))
        const slowB = yield* Effect.promise(() =>
          startDribblers(server.socketPath, COHORT, (i) => (i % 2 === 0 ? 5 : 6))
        )
        yield* Effect.promise(() => waitForOpen(server.status, 1 + 4 * COHORT))

        yield* tick(1_000, [...slowA, ...slowB])
        yield* tick(1_000, [...slowA, ...slowB])
        yield* tick(900, [...slowA, ...slowB])
        // t = 4.9 s: nobody's deadline has passed.
        expect(rejected()).toEqual({})
        expect(server.status().connections.open).toBe(1 + 4 * COHORT)

        // t = 5.2 s: cohort A's deadlines (5 s) passed, B's (7 s) did not.
        yield* tick(300, [...slowA, ...slowB])
        yield* allClosed([...silentA, ...slowA.map((d) => d.client)])
        yield* Effect.promise(() =>
          poll(
            rejected,
            (now) => (now.handshake_timeout ?? 0) + (now.partial_frame_timeout ?? 0) === 2 * COHORT,
            { what: "both cohorts closed by their deadlines" }
          )
        )
        expect(rejected()).toEqual({ handshake_timeout: COHORT, partial_frame_timeout: COHORT })
        yield* Effect.promise(() => waitForOpen(server.status, 1 + 2 * COHORT))
        expect([...silentB, ...slowB.map((d) => d.client)].some((c) => c.closed)).toBe(false)

        yield* tick(1_000, slowB)
        yield* tick(700, slowB)
        // t = 6.9 s: B still open.
        expect(rejected()).toEqual({ handshake_timeout: COHORT, partial_frame_timeout: COHORT })
        expect(server.status().connections.open).toBe(1 + 2 * COHORT)

        // t = 7.2 s: B's deadlines passed.
        yield* tick(300, slowB)
        yield* allClosed([...silentB, ...slowB.map((d) => d.client)])
        yield* Effect.promise(() => waitForOpen(server.status, 1))
        expect(rejected()).toEqual({ handshake_timeout: 2 * COHORT, partial_frame_timeout: 2 * COHORT })

        // Closed by the deadline means closed without a frame: no silent client got anything, and no
        // dribbler got more than the answer to its complete request.
        for (const client of [
          ...silentA,
          ...silentB,
          ...slowA.map((d) => d.client),
          ...slowB.map((d) => d.client)
        ]) {
          expect(client.pending).toEqual([])
        }
        // The steady client never had a deadline: long after, it is still served.
        yield* TestClock.adjust("1 minute")
        yield* steadyServed
        expect(server.status().connections.open).toBe(1)
        steady.close()
        yield* Effect.promise(() => waitForOpen(server.status, 0))
        expect(server.status().deadlinesPending).toBe(0)
        expect(server.status().requestsInFlight).toBe(0)
      }),
    60_000
  )

  // Found by these tests: the decoder used to report no partial frame once a header was complete.
  it.scoped("a complete 4-byte header with no payload after it is closed 5 s later (TestClock)", () =>
    Effect.gen(function* () {
      const server = yield* startServer()
      const client = yield* Effect.promise(() => FrameClient.open(server.socketPath))
      // A complete request in the same write: its answer proves the header behind it was read.
      client.sendRaw(Buffer.concat([request("sync"), request("stalled").subarray(0, 4)]))
      yield* Effect.promise(() => client.frameWhere((f) => f.id === "sync"))
      yield* TestClock.adjust("5200 millis")
      yield* Effect.promise(() => client.waitClosed(2_000))
      expect(server.status().connections.rejected.partial_frame_timeout).toBe(1)
    })
  )

  it.scoped("a header dribbled one byte a second is closed 5 s after its first byte (TestClock)", () =>
    Effect.gen(function* () {
      const server = yield* startServer()
      const [d] = yield* Effect.promise(() => startDribblers(server.socketPath, 1, () => 1))
      const dribbler = d!
      for (let second = 1; second <= 5; second++) {
        dribble([dribbler])
        yield* TestClock.adjust("1 second")
      }
      yield* TestClock.adjust("200 millis")
      yield* Effect.promise(() => dribbler.client.waitClosed(2_000))
      expect(server.status().connections.rejected.partial_frame_timeout).toBe(1)
    })
  )
})
