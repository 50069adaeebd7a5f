import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"

const system = Clock.make()

/**
 * The system clock, but its timers do not keep the process alive. The
 * Promise-based stores run under it so that an idle client (its 5 min idle
 * timer pending) never holds a short-lived CLI open; while a request is in
 * flight, the socket itself keeps the process alive.
 */
export const unrefClock: Clock.Clock = {
  [Clock.ClockTypeId]: Clock.ClockTypeId,
  unsafeCurrentTimeMillis: () => system.unsafeCurrentTimeMillis(),
  currentTimeMillis: system.currentTimeMillis,
  unsafeCurrentTimeNanos: () => system.unsafeCurrentTimeNanos(),
  currentTimeNanos: system.currentTimeNanos,
  sleep: (duration) => unrefSleep(Duration.toMillis(duration))
}

/** Node runs a timer over 2^31-1 ms (or an infinite one) after 1 ms: longer waits are chained. */
const MAX_TIMER_MS = 2 ** 31 - 1

const unrefSleep = (ms: number): Effect.Effect<void> => {
  if (!Number.isFinite(ms)) return Effect.never
  const step = Math.min(Math.max(ms, 0), MAX_TIMER_MS)
  const wait = Effect.async<void>((resume) => {
    const timer = setTimeout(() => resume(Effect.void), step)
    timer.unref()
    return Effect.sync(() => clearTimeout(timer))
  })
  return ms > MAX_TIMER_MS ? Effect.zipRight(wait, unrefSleep(ms - MAX_TIMER_MS)) : wait
}
