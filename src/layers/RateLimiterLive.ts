import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { monotonicMillis } from "../lib/monotonic.js"
import { RateLimiter, tokenBucket } from "../services/RateLimiter.js"

/** A token bucket per connection on the Effect `Clock` (so `TestClock` drives it); `0` turns the limit off. */
export const layer = (perSecond: number): Layer.Layer<RateLimiter> =>
  Layer.effect(
    RateLimiter,
    Effect.map(Effect.clock, (clock) =>
      RateLimiter.of({ forConnection: () => tokenBucket(perSecond, () => monotonicMillis(clock)) })
    )
  )
