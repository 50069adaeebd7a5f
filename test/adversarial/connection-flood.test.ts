import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { waitForOpen } from "../support/adversarial.js"
import { FrameClient } from "../support/frame-client.js"
import { startServer } from "../support/server.js"

/**
 * A connection flood past `maxConnections` (PROTOCOL.md §14, §22): excess
 * connections are closed at once without a frame — the oldest of those
 * without a handshake make room for newer ones (`evicted`), and once every
 * slot is held by a handshaken connection a new one is refused
 * (`max_connections`) — and they do not hurt the ones being served. On
 * TestClock no deadline ever fires, so a connection that closes can only have
 * been evicted or refused.
 */

const LIMIT = 20
const FLOOD = 200

type Attempt = { readonly served: true; readonly client: FrameClient } | { readonly served: false }

/** Connects and handshakes; a refused connection is closed without any frame. */
const attempt = async (socketPath: string): Promise<Attempt> => {
  const client = await FrameClient.connect(socketPath)
  client.send({ v: 1, op: "handshake", payload: { minVersion: 1, maxVersion: 1 } })
  try {
    const reply = await client.nextFrame(10_000)
    expect(reply).toEqual({ v: 1, op: "handshake", ok: true, data: { version: 1 } })
    return { served: true, client }
  } catch (error) {
    if (!client.closed) throw error
    expect(client.pending).toEqual([])
    return { served: false }
  }
}

/** Opens FLOOD connections at once while `steady` keeps making requests; resolves when all have settled. */
const flood = async (socketPath: string, steady: FrameClient) => {
  let settled = false
  const attempts = Promise.all(Array.from({ length: FLOOD }, () => attempt(socketPath))).finally(() => {
    settled = true
  })
  let steadyAnswers = 0
  while (!settled) {
    const reply = await steady.request("list_api_keys")
    expect(reply.ok).toBe(true)
    steadyAnswers++
  }
  const results = await attempts
  return {
    served: results.flatMap((r) => (r.served ? [r.client] : [])),
    refused: results.filter((r) => !r.served).length,
    steadyAnswers
  }
}

describe("a connection flood", () => {
  it.scoped(
    `${FLOOD} connections at once against maxConnections ${LIMIT}: the excess is closed without a frame, served ones go on`,
    () =>
      Effect.gen(function* () {
        // No rate limit: the steady client asks in a tight loop while the flood runs.
        const server = yield* startServer({ config: { maxConnections: LIMIT }, rateLimit: 0 })
        const steady = yield* Effect.promise(() => FrameClient.open(server.socketPath))

        // Wave 1: one slot is the steady client's, so exactly LIMIT - 1 of the flood are served.
        const first = yield* Effect.promise(() => flood(server.socketPath, steady))
        expect(first.served).toHaveLength(LIMIT - 1)
        expect(first.refused).toBe(FLOOD - (LIMIT - 1))
        expect(first.steadyAnswers).toBeGreaterThan(0)
        /** Connections closed without a frame: evicted or refused, and for no other reason. */
        const closed = () => {
          const { evicted = 0, max_connections: refused = 0, ...other } = server.status().connections.rejected
          expect(other).toEqual({})
          return { evicted, refused }
        }
        const afterFirst = closed()
        expect(afterFirst.evicted + afterFirst.refused).toBe(FLOOD - (LIMIT - 1))
        expect(server.status().connections.open).toBe(LIMIT)

        // Every served connection is fully usable, pipelined requests included.
        const served = [...first.served]
        yield* Effect.promise(() =>
          Promise.all(
            served.map(async (client) => {
              const replies = await Promise.all([
                client.request("list_api_keys"),
                client.request("list_providers"),
                client.request("get_token", { provider: "nobody" })
              ])
              expect(replies.map((r) => r.ok ?? r.code)).toEqual([true, true, false])
              expect(replies[2]!.code).toBe("NOT_FOUND")
            })
          )
        )

        // Wave 2 while every slot is handshaken: everything is refused, and the served ones do not notice.
        const second = yield* Effect.promise(() => flood(server.socketPath, steady))
        expect(second.served).toHaveLength(0)
        expect(second.refused).toBe(FLOOD)
        expect(closed()).toEqual({ evicted: afterFirst.evicted, refused: afterFirst.refused + FLOOD })
        expect(server.audit.events.some((e) => e.message.includes("too many connections"))).toBe(true)
        for (const client of served) {
          expect(client.closed).toBe(false)
          expect((yield* Effect.promise(() => client.request("list_api_keys"))).ok).toBe(true)
        }

        // Slots come back as served connections leave.
        for (const client of served.splice(0, 10)) client.close()
        yield* Effect.promise(() => waitForOpen(server.status, LIMIT - 10))
        const third = yield* Effect.promise(() => flood(server.socketPath, steady))
        expect(third.served).toHaveLength(10)
        expect(third.refused).toBe(FLOOD - 10)
        served.push(...third.served)
        for (const client of served) {
          expect((yield* Effect.promise(() => client.request("list_api_keys"))).ok).toBe(true)
        }
        expect(server.status().connections.open).toBe(LIMIT)

        // Nothing was held for the refused ones: when everyone leaves, the server is empty.
        for (const client of served) client.close()
        steady.close()
        yield* Effect.promise(() => waitForOpen(server.status, 0))
        const status = server.status()
        const { evicted, refused } = closed()
        expect(evicted + refused).toBe(3 * FLOOD - (LIMIT - 1) - 10)
        // Every connection accepted was either served or evicted; the refused ones never got one.
        expect(status.connections.total).toBe(1 + (LIMIT - 1) + 10 + evicted)
        expect(status.requestsInFlight).toBe(0)
        expect(status.deadlinesPending).toBe(0)
      }),
    60_000
  )
})
