import type { RejectReason } from "./rejections.js"

/**
 * Why an open connection's reads are paused: its peer does not take its
 * answers, the answers it holds (with those its requests may still add)
 * reach the bound, or it has the most requests in flight.
 */
export type PauseReason = "peerNotReading" | "answersHeld" | "inFlightLimit"

/** Who is at the other end of a connection, as the kernel said at accept (PROTOCOL.md §9). */
export interface PeerInfo {
  readonly uid?: number
  readonly pid?: number
}

/**
 * What `credproxy status` shows of one connection: its peer, when it came,
 * the version it settled on and its requests by op (counted as they are
 * answered; the object is made on the first one).
 */
export class ConnectionInfo {
  version: number | undefined
  requests: Record<string, number> | undefined

  constructor(
    readonly peer: PeerInfo,
    /** Wall clock, milliseconds since the epoch. */
    readonly connectedAt: number
  ) {}

  count(op: string): void {
    this.requests ??= {}
    this.requests[op] = (this.requests[op] ?? 0) + 1
  }
}

/** What the status needs to know of each open connection. */
export interface ConnectionView {
  readonly info: ConnectionInfo
  readonly requestsInFlight: number
  readonly pausedBy: PauseReason | undefined
  readonly heldAnswerBytes: number
}

/** A point-in-time view of the server's counters, for tests and the SIGUSR1 status line. */
export interface StatusSnapshot {
  readonly connections: {
    readonly open: number
    readonly total: number
    readonly rejected: Readonly<Partial<Record<RejectReason, number>>>
    /** Open connections whose reads are paused, by why (backpressure: nothing is dropped). */
    readonly paused: Readonly<Record<PauseReason, number>>
    /** Bytes of answers written to all connections and not yet taken by their peers. */
    readonly heldAnswerBytes: number
  }
  /** Requests by operation, then by outcome (`ok` or a wire code). */
  readonly requests: Readonly<Record<string, Readonly<Record<string, number>>>>
  readonly requestsInFlight: number
  readonly deadlinesPending: number
  /** OAuth login sessions held (live, finished or expired, until collected). */
  readonly loginSessions: number
}

/**
 * The server's counters. Plain fields updated on the request path: one
 * object lookup and an increment per request, nothing allocated.
 */
export class ServerStatus {
  connectionsOpen = 0
  connectionsTotal = 0
  readonly rejected: Partial<Record<RejectReason, number>> = {}
  private readonly requests = new Map<string, Record<string, number>>()

  reject(reason: RejectReason): void {
    this.rejected[reason] = (this.rejected[reason] ?? 0) + 1
  }

  request(op: string, outcome: string): void {
    let byOutcome = this.requests.get(op)
    if (byOutcome === undefined) {
      byOutcome = {}
      this.requests.set(op, byOutcome)
    }
    byOutcome[outcome] = (byOutcome[outcome] ?? 0) + 1
  }

  snapshot(
    connections: Iterable<ConnectionView>,
    deadlinesPending: number,
    loginSessions: number
  ): StatusSnapshot {
    let requestsInFlight = 0
    let heldAnswerBytes = 0
    const paused: Record<PauseReason, number> = { peerNotReading: 0, answersHeld: 0, inFlightLimit: 0 }
    for (const connection of connections) {
      requestsInFlight += connection.requestsInFlight
      heldAnswerBytes += connection.heldAnswerBytes
      if (connection.pausedBy !== undefined) paused[connection.pausedBy]++
    }
    return {
      connections: {
        open: this.connectionsOpen,
        total: this.connectionsTotal,
        rejected: { ...this.rejected },
        paused,
        heldAnswerBytes
      },
      requests: Object.fromEntries([...this.requests].map(([op, outcomes]) => [op, { ...outcomes }])),
      requestsInFlight,
      deadlinesPending,
      loginSessions
    }
  }
}
