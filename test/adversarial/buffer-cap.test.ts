import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { encodeFrame } from "../../src/protocol/frame.js"
import { RawClient, waitForOpen } from "../support/adversarial.js"
import { FrameClient } from "../support/frame-client.js"
import { startServer } from "../support/server.js"

/**
 * The per-connection cap on bytes received but not yet handled
 * (`maxBufferedBytes`): a connection that piles up more than that (here: a
 * frame announced at the size limit whose payload keeps coming) is closed and
 * counted, no matter how the bytes are split, and other connections do not
 * notice. Nothing here depends on time: the bytes can never be handled (the
 * frame is incomplete), so passing the cap is certain once they are sent.
 */

const CAP = 4096

describe("per-connection buffered-bytes cap", () => {
  it.scoped("a connection holding more unhandled bytes than the cap is closed; others go on", () =>
    Effect.gen(function* () {
      const server = yield* startServer({ config: { maxBufferedBytes: CAP } })
      const steady = yield* Effect.promise(() => FrameClient.open(server.socketPath))

      // Under the cap: a large frame arriving in pieces is fine.
      const big = encodeFrame(JSON.stringify({ v: 1, id: "big", op: "list_api_keys", pad: "y".repeat(3000) }))
      expect(big.length).toBeLessThan(CAP)
      const fine = yield* Effect.promise(() => FrameClient.open(server.socketPath))
      for (let at = 0; at < big.length; at += 500) fine.sendRaw(big.subarray(at, at + 500))
      expect((yield* Effect.promise(() => fine.frameWhere((f) => f.id === "big"))).ok).toBe(true)

      // Over it: a frame announced at the size limit, its payload sent in small pieces past the cap.
      const hog = yield* Effect.promise(async () => {
        const client = await RawClient.connect(server.socketPath)
        client.write(
          encodeFrame(JSON.stringify({ v: 1, op: "handshake", payload: { minVersion: 1, maxVersion: 1 } }))
        )
        const header = Buffer.alloc(4)
        header.writeUInt32BE(65536)
        client.write(header)
        for (let sent = 0; sent <= CAP; sent += 256) {
          client.write(Buffer.alloc(256, 0x20))
          await new Promise((resolve) => setImmediate(resolve))
        }
        await client.waitClosed()
        return client
      })
      // It got its handshake answer and nothing else.
      expect(hog.answers.map((a) => JSON.parse(a))).toEqual([
        { v: 1, op: "handshake", ok: true, data: { version: 1 } }
      ])
      expect(server.status().connections.rejected).toEqual({ buffer_cap: 1 })
      expect(server.audit.events.some((e) => e.message.includes("buffered too many"))).toBe(true)

      for (const client of [steady, fine]) {
        expect((yield* Effect.promise(() => client.request("list_api_keys"))).ok).toBe(true)
      }
      steady.close()
      fine.close()
      yield* Effect.promise(() => waitForOpen(server.status, 0))
    })
  )
})
