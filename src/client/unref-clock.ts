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
  sleep: (duration) =>
    Effect.async<void>((resume) => {
      const timer = setTimeout(() => resume(Effect.void), Duration.toMillis(duration))
      timer.unref()
      return Effect.sync(() => clearTimeout(timer))
    })
}
