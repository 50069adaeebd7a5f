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
  /** Answers in the batch that `retract` may replace: their index in it, then their request id. */
  private retractable: Array<number | string> | undefined
  blocked = false

  constructor(private readonly socket: net.Socket) {}

  /** Bytes written to the socket and not yet taken by the peer, plus those collected for the next write. */
  get heldBytes(): number {
    return this.socket.writableLength + this.batch.size
  }

  /** Adds an answer to the batch; with `id`, `retract(id)` may replace it until it is written. */
  add(reply: Reply, id?: string): void {
    if (id !== undefined) {
      this.retractable ??= []
      this.retractable.push(this.batch.count, id)
    }
    this.batch.add(reply.json, reply.bytes)
    // Large answers are written as they come, so a peer that stops reading is noticed within one read.
    if (this.batch.size >= FLUSH_AT_BYTES) this.flush()
  }

  /**
   * Replaces the latest answer to request `id` that is not written yet with
   * `reply` (a `cancel` that came before it went out, §20); whether there was one.
   */
  retract(id: string, reply: Reply): boolean {
    const pending = this.retractable
    if (pending === undefined) return false
    for (let i = pending.length - 1; i > 0; i -= 2) {
      if (pending[i] !== id) continue
      this.batch.replace(pending[i - 1] as number, reply.json, reply.bytes)
      pending.splice(i - 1, 2)
      return true
    }
    return false
  }

  flush(): void {
    if (this.retractable !== undefined) this.retractable.length = 0
    const bytes = this.batch.take()
    if (bytes !== undefined && !this.socket.write(bytes)) this.blocked = true
  }

  /** The peer took what was written (the socket's `drain`). */
  drained(): void {
    this.blocked = false
  }
}
