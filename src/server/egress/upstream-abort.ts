import { EventEmitter } from "node:events"

/**
 * What aborts one upstream request: undici takes an emitter with `aborted`
 * and an `abort` event as its `signal`, which costs far less per request than
 * an `AbortController` (an `EventTarget`: `createAbortSignal` was the egress
 * proxy's busiest own function in a CPU profile under load).
 */
export class UpstreamAbort extends EventEmitter {
  aborted = false

  abort(): void {
    if (this.aborted) return
    this.aborted = true
    this.emit("abort")
  }
}
