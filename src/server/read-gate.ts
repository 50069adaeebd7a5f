import { MAX_FRAME_BYTES } from "../protocol/limits.js"
import type { AuditLogShape } from "../services/AuditLog.js"
import type { ConnectionOutput } from "./connection-output.js"
import type { ConnectionRequests } from "./connection-requests.js"
import type { ServerConfigShape } from "./ServerConfig.js"
import type { PauseReason } from "./ServerStatus.js"

/** Why an open connection stops handling frames until that reason clears. */
export type Hold = PauseReason | "yielding"

/**
 * Flow control of one connection, in one place: the reasons it stops
 * handling frames (and so reading bytes) while it stays open. Backpressure
 * never drops a request: what is held back is handled once the reason goes.
 */
export class ReadGate {
  /** This connection had its turn; others go first (fairness under floods of tiny frames). */
  yielding = false

  constructor(
    private readonly out: ConnectionOutput,
    private readonly requests: ConnectionRequests,
    private readonly config: ServerConfigShape
  ) {}

  /** The first reason frames are held back, or `undefined` when they may be handled. */
  get hold(): Hold | undefined {
    if (this.yielding) return "yielding"
    if (this.out.blocked) return "peerNotReading"
    if (this.requests.inFlight >= this.config.maxInFlightPerConnection) return "inFlightLimit"
    return this.answersHeld ? "answersHeld" : undefined
  }

  /**
   * The bound on answers waiting for the peer (§22), kept without dropping
   * anything: every request in flight may still add an answer of the largest
   * size, so reads pause while what is held plus that reserve reaches the
   * bound. A peer that does not read ends up held back, over it by at most
   * one answer (larger than 64 KiB only on a version 2 connection).
   */
  private get answersHeld(): boolean {
    const reserve = this.requests.inFlight * MAX_FRAME_BYTES
    return this.out.heldBytes + reserve >= this.config.maxHeldAnswerBytes
  }
}

/** Limits that only pause a connection: logged once per connection, not every time they bite. */
const PAUSES = {
  framesPerRead: "frames per read at the limit; letting other connections go first",
  inFlight: "requests in flight at the limit; pausing reads"
} as const

export class PauseLog {
  /** The pauses already logged, as bits (no allocation per connection). */
  private logged = 0

  constructor(private readonly audit: AuditLogShape) {}

  once(pause: keyof typeof PAUSES, limit: number): void {
    const bit = pause === "framesPerRead" ? 1 : 2
    if ((this.logged & bit) !== 0) return
    this.logged |= bit
    this.audit.event("Info", PAUSES[pause], { limit })
  }
}
