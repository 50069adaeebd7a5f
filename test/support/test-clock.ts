import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Runtime from "effect/Runtime"
import * as TestClock from "effect/TestClock"
import { until } from "./until.js"

/**
 * Waits (in real time, up to `limitMs`) until some fiber sleeps until
 * `now + ms` on the TestClock, so a test adjusts the clock only after the
 * timer it means to fire exists (fibers started by a fork run asynchronously).
 */
export const awaitTimer = (ms: number, limitMs = 5_000) =>
  Effect.gen(function* () {
    const target = (yield* TestClock.currentTimeMillis) + ms
    const sleeps = Runtime.runSync(yield* Effect.runtime<never>())
    yield* Effect.promise(() =>
      until(() => Chunk.some(sleeps(TestClock.sleeps()), (at) => at === target), {
        limitMs,
        what: `a timer for +${ms} ms`
      })
    )
  })
