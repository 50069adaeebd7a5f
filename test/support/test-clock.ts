import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as TestClock from "effect/TestClock"

/**
 * Waits (in real time, up to `limitMs`) until some fiber sleeps until
 * `now + ms` on the TestClock, so a test adjusts the clock only after the
 * timer it means to fire exists (fibers started by a fork run asynchronously).
 */
export const awaitTimer = (ms: number, limitMs = 5_000) =>
  Effect.gen(function* () {
    const target = (yield* TestClock.currentTimeMillis) + ms
    const deadline = Date.now() + limitMs
    while (!Chunk.some(yield* TestClock.sleeps(), (at) => at === target)) {
      if (Date.now() > deadline) return yield* Effect.dieMessage(`no timer for +${ms} ms appeared`)
      yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 5)))
    }
  })
