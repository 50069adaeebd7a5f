import type * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"

/** Something with a deadline (Clock milliseconds) and what to do when it passes. */
export interface Expirable {
  readonly deadline: number
  readonly expire: () => void
}

/**
 * Connection deadlines (handshake, partial frame) without a timer or fiber per
 * connection: a connection registers itself while a deadline is pending, and
 * one scoped fiber sweeps the set on the Effect `Clock`, so `TestClock` drives
 * it in tests and it stops with the server's scope.
 */
export class DeadlineWatch {
  private readonly watched = new Set<Expirable>()

  constructor(readonly clock: Clock.Clock) {}

  now(): number {
    return this.clock.unsafeCurrentTimeMillis()
  }

  watch(item: Expirable): void {
    this.watched.add(item)
  }

  unwatch(item: Expirable): void {
    this.watched.delete(item)
  }

  get size(): number {
    return this.watched.size
  }

  sweep(): void {
    if (this.watched.size === 0) return
    const now = this.now()
    for (const item of this.watched) {
      if (item.deadline <= now) {
        this.watched.delete(item)
        item.expire()
      }
    }
  }
}

/** How far past a deadline a connection may live: the sweep interval. */
export const SWEEP_INTERVAL = Duration.millis(100)

export const startDeadlineWatch: Effect.Effect<DeadlineWatch, never, Scope.Scope> = Effect.gen(function* () {
  const watch = new DeadlineWatch(yield* Effect.clock)
  yield* Effect.sync(() => watch.sweep()).pipe(
    Effect.repeat(Schedule.spaced(SWEEP_INTERVAL)),
    Effect.forkScoped
  )
  return watch
})
