import type { RejectReason } from "./rejections.js"

/** A point-in-time view of the server's counters, for tests and the SIGUSR1 status line. */
export interface StatusSnapshot {
  readonly connections: {
    readonly open: number
    readonly total: number
    readonly rejected: Readonly<Partial<Record<RejectReason, number>>>
  }
  /** Requests by operation, then by outcome (`ok` or a wire code). */
  readonly requests: Readonly<Record<string, Readonly<Record<string, number>>>>
  readonly requestsInFlight: number
  readonly deadlinesPending: number
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

  snapshot(requestsInFlight: number, deadlinesPending: number): StatusSnapshot {
    return {
      connections: {
        open: this.connectionsOpen,
        total: this.connectionsTotal,
        rejected: { ...this.rejected }
      },
      requests: Object.fromEntries([...this.requests].map(([op, outcomes]) => [op, { ...outcomes }])),
      requestsInFlight,
      deadlinesPending
    }
  }
}
