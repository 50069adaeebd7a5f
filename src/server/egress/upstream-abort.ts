type Listener = () => void

/**
 * What aborts one upstream request: undici takes an object with `aborted`,
 * `on`/`once` and `removeListener` for `abort` as its `signal`. Not an
 * `AbortController` (an `EventTarget`: `createAbortSignal` was the egress
 * proxy's busiest own function in a CPU profile under load), nor an
 * `EventEmitter`: the fresh listener table `removeListener` makes on every
 * request was, after the response patching, what young-generation scavenges
 * promoted most (a sampling heap profile of what only a full GC collects).
 */
export class UpstreamAbort {
  aborted = false
  /** Where `InFlightAborts` holds it; -1 when it does not. */
  slot = -1
  private listeners: Array<Listener> | undefined = undefined

  on(_event: "abort", listener: Listener): this {
    if (this.listeners === undefined) this.listeners = [listener]
    else this.listeners.push(listener)
    return this
  }

  /** `abort` is emitted at most once, so `once` is `on`. */
  once(event: "abort", listener: Listener): this {
    return this.on(event, listener)
  }

  removeListener(_event: "abort", listener: Listener): this {
    const at = this.listeners?.indexOf(listener) ?? -1
    if (at >= 0) this.listeners?.splice(at, 1)
    return this
  }

  abort(): void {
    if (this.aborted) return
    this.aborted = true
    const listeners = this.listeners
    this.listeners = undefined
    if (listeners !== undefined) for (const listener of listeners) listener()
  }
}
