import type * as Clock from "effect/Clock"

/**
 * Milliseconds from the Clock's high-resolution counter, which is monotonic
 * for the system clock (and follows `TestClock` in tests): intervals measured
 * with it survive the wall clock being stepped back (NTP, a VM resuming).
 */
export const monotonicMillis = (clock: Clock.Clock): number => Number(clock.unsafeCurrentTimeNanos()) / 1e6
