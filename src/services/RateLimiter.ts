import type * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { monotonicMillis } from "./monotonic.js"

/** One connection's budget: `take` answers 0 when the request may go on, else the seconds to wait (0 < s <= 1). */
export interface ConnectionRateLimit {
  readonly take: () => number
}

/**
 * Per-connection request rate limit (PROTOCOL.md §10) as a token bucket on the
 * Effect `Clock`: `perSecond` requests a second, refilled continuously, with a
 * burst of one second's worth. `0` turns it off.
 */
export interface RateLimiterShape {
  readonly forConnection: () => ConnectionRateLimit
}

export class RateLimiter extends Context.Tag("credproxy/RateLimiter")<RateLimiter, RateLimiterShape>() {}

const UNLIMITED: ConnectionRateLimit = { take: () => 0 }

export const makeRateLimiter = (perSecond: number, clock: Clock.Clock): RateLimiterShape => ({
  forConnection: () => {
    if (perSecond <= 0) return UNLIMITED
    let tokens = perSecond
    let last = monotonicMillis(clock)
    return {
      take: () => {
        const now = monotonicMillis(clock)
        if (now > last) {
          tokens = Math.min(perSecond, tokens + ((now - last) * perSecond) / 1000)
          last = now
        }
        if (tokens >= 1) {
          tokens -= 1
          return 0
        }
        const seconds = (1 - tokens) / perSecond
        return Math.min(1, Math.max(0.001, Math.ceil(seconds * 1000) / 1000))
      }
    }
  }
})

export const layer = (perSecond: number) =>
  Layer.effect(
    RateLimiter,
    Effect.map(Effect.clock, (clock) => makeRateLimiter(perSecond, clock))
  )
