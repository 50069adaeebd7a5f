/** What the slots need to know about a connection that has not completed its handshake. */
export interface Handshaking {
  /** It has sent part of its handshake frame (so it is talking, not just holding a slot). */
  readonly midFrame: boolean
}

/**
 * The connections that have not completed the handshake, oldest first, and
 * which of them to close when a new one needs room (PROTOCOL.md §22: they may
 * hold only a share of the slots; the oldest is closed to admit a new one).
 *
 * Among them, the one closed is the oldest that has sent nothing and whose
 * process holds other handshake slots too; failing that, the oldest that has
 * sent nothing; failing that, the oldest. A process that keeps connecting
 * without a word so pushes out its own connections first: a client of
 * another process is not starved by it, even before its first bytes arrive.
 * Many processes with one connection each fall back to oldest first, where a
 * client survives `share` newer connections before it must have spoken.
 */
export class HandshakeSlots<C extends Handshaking> {
  /** Each connection with the pid of its peer (`undefined` when the kernel did not say), oldest first. */
  private readonly waiting = new Map<C, number | undefined>()
  private readonly perPeer = new Map<number | undefined, number>()

  constructor(readonly share: number) {}

  get size(): number {
    return this.waiting.size
  }

  get full(): boolean {
    return this.waiting.size >= this.share
  }

  add(connection: C, peerPid: number | undefined): void {
    this.waiting.set(connection, peerPid)
    this.perPeer.set(peerPid, (this.perPeer.get(peerPid) ?? 0) + 1)
  }

  /** It completed its handshake or closed: no longer holds a slot. Deleting twice is harmless. */
  delete(connection: C): void {
    if (!this.waiting.has(connection)) return
    const peerPid = this.waiting.get(connection)
    this.waiting.delete(connection)
    const left = (this.perPeer.get(peerPid) ?? 1) - 1
    if (left === 0) this.perPeer.delete(peerPid)
    else this.perPeer.set(peerPid, left)
  }

  /** The connection to close to make room, as described above; `undefined` when there is none. */
  victim(): C | undefined {
    let oldest: C | undefined
    let oldestSilent: C | undefined
    for (const [connection, peerPid] of this.waiting) {
      oldest ??= connection
      if (connection.midFrame) continue
      if ((this.perPeer.get(peerPid) ?? 0) > 1) return connection
      oldestSilent ??= connection
    }
    return oldestSilent ?? oldest
  }
}
