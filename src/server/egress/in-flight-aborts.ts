import type { UpstreamAbort } from "./upstream-abort.js"

/**
 * The upstream aborts of the requests in flight, so a stop can abort them.
 * Added and removed in place (each abort knows its slot; the last one moves
 * into a freed slot), with no allocation per request: a `Set` rebuilt its
 * table as entries churned, and those tables were the egress proxy's own
 * largest share of what young-generation scavenges promoted.
 */
export class InFlightAborts {
  private readonly items: Array<UpstreamAbort> = []

  get size(): number {
    return this.items.length
  }

  add(abort: UpstreamAbort): void {
    abort.slot = this.items.length
    this.items.push(abort)
  }

  delete(abort: UpstreamAbort): void {
    const slot = abort.slot
    if (slot < 0 || this.items[slot] !== abort) return
    const last = this.items.pop()
    if (last !== undefined && last !== abort) {
      this.items[slot] = last
      last.slot = slot
    }
    abort.slot = -1
  }

  abortAll(): void {
    for (const abort of [...this.items]) abort.abort()
  }
}
