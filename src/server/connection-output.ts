import type * as net from "node:net"
import { FrameBatch } from "../protocol/frame.js"
import type { Reply } from "./replies.js"

/** Collected answers are written once they reach this size, even in the middle of a read. */
const FLUSH_AT_BYTES = 64 * 1024

/**
 * The answers of one connection on their way out: collected while a read is
 * handled and written as one buffer (one `write` per read, not per answer),
 * large ones at once. `blocked` is set while the peer is not taking what was
 * written; the connection stops handling its frames meanwhile. `heldBytes`
 * is what waits for the peer, for the connection's bound on it (§22).
 */
export class ConnectionOutput {
  private readonly batch = new FrameBatch()
  /** The request id of each answer in the batch (`undefined` where it may not be taken back). */
  private readonly batchIds: Array<string | undefined> = []
  blocked = false

  constructor(private readonly socket: net.Socket) {}

  /** Bytes written to the socket and not yet taken by the peer, plus those collected for the next write. */
  get heldBytes(): number {
    return this.socket.writableLength + this.batch.size
  }

  /** Adds an answer to the batch; with `id`, `retract(id)` may replace it until it is written. */
  add(reply: Reply, id?: string): void {
    this.batch.add(reply.json, reply.bytes)
    this.batchIds.push(id)
    // Large answers are written as they come, so a peer that stops reading is noticed within one read.
    if (this.batch.size >= FLUSH_AT_BYTES) this.flush()
  }

  /**
   * Replaces the latest answer to request `id` that is not written yet with
   * `reply` (a `cancel` that came before it went out, §20); whether there was one.
   */
  retract(id: string, reply: Reply): boolean {
    const index = this.batchIds.lastIndexOf(id)
    if (index < 0) return false
    this.batch.replace(index, reply.json, reply.bytes)
    this.batchIds[index] = undefined
    return true
  }

  flush(): void {
    this.batchIds.length = 0
    const bytes = this.batch.take()
    if (bytes !== undefined && !this.socket.write(bytes)) this.blocked = true
  }

  /** The peer took what was written (the socket's `drain`). */
  drained(): void {
    this.blocked = false
  }
}
