import type * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { monotonicMillis } from "../lib/monotonic.js"

/** Something with a deadline (Clock milliseconds) and what to do when it passes. */
export interface Expirable {
  readonly deadline: number
  readonly expire: () => void
}

/**
 * Connection deadlines (handshake, partial frame) without a timer or fiber per
 * connection: a connection registers itself while a deadline is pending, and
 * one scoped fiber sweeps the set every 100 ms on the Effect `Clock` — only
 * while something is registered — so `TestClock` drives it in tests and it
 * stops with the server's scope.
 */
export class DeadlineWatch {
  private readonly watched = new Set<Expirable>()

  /** `pending` is open while anything is watched: the sweeper sleeps on it instead of ticking idly. */
  constructor(
    readonly clock: Clock.Clock,
    readonly pending: Effect.Latch
  ) {}

  now(): number {
    return monotonicMillis(this.clock)
  }

  watch(item: Expirable): void {
    if (this.watched.size === 0) this.pending.unsafeOpen()
    this.watched.add(item)
  }

  unwatch(item: Expirable): void {
    this.watched.delete(item)
  }

  get size(): number {
    return this.watched.size
  }

  sweep(): void {
    const now = this.now()
    for (const item of this.watched) {
      if (item.deadline <= now) {
        this.watched.delete(item)
        item.expire()
      }
    }
    if (this.watched.size === 0) this.pending.unsafeClose()
  }
}

/** How far past a deadline a connection may live: the sweep interval. */
export const SWEEP_INTERVAL = Duration.millis(100)

export const startDeadlineWatch: Effect.Effect<DeadlineWatch, never, Scope.Scope> = Effect.gen(function* () {
  const watch = new DeadlineWatch(yield* Effect.clock, yield* Effect.makeLatch(false))
  yield* watch.pending.await.pipe(
    Effect.zipRight(Effect.sleep(SWEEP_INTERVAL)),
    Effect.zipRight(Effect.sync(() => watch.sweep())),
    Effect.forever,
    Effect.forkScoped
  )
  return watch
})
