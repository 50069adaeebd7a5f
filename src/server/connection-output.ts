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
  blocked = false

  constructor(private readonly socket: net.Socket) {}

  /** Bytes written to the socket and not yet taken by the peer, plus those collected for the next write. */
  get heldBytes(): number {
    return this.socket.writableLength + this.batch.size
  }

  add(reply: Reply): void {
    this.batch.add(reply.json, reply.bytes)
    // Large answers are written as they come, so a peer that stops reading is noticed within one read.
    if (this.batch.size >= FLUSH_AT_BYTES) this.flush()
  }

  flush(): void {
    const bytes = this.batch.take()
    if (bytes !== undefined && !this.socket.write(bytes)) this.blocked = true
  }

  /** The peer took what was written (the socket's `drain`). */
  drained(): void {
    this.blocked = false
  }
}
