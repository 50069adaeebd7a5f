import * as Context from "effect/Context"

/** One connection's budget: `take` answers 0 when the request may go on, else the seconds to wait (0 < s <= 1). */
export interface ConnectionRateLimit {
  readonly take: () => number
}

/**
 * Per-connection request rate limit (PROTOCOL.md §10): `forConnection` gives
 * each new connection its own budget.
 */
export interface RateLimiterShape {
  readonly forConnection: () => ConnectionRateLimit
}

export class RateLimiter extends Context.Tag("credproxy/RateLimiter")<RateLimiter, RateLimiterShape>() {}

export const UNLIMITED: ConnectionRateLimit = { take: () => 0 }

/**
 * A token bucket: `perSecond` requests a second, refilled continuously, with
 * a burst of one second's worth; `nowMs` is a monotonic clock in
 * milliseconds. The wait it answers is rounded up to the millisecond and
 * never more than a second.
 */
export const tokenBucket = (perSecond: number, nowMs: () => number): ConnectionRateLimit => {
  if (perSecond <= 0) return UNLIMITED
  let tokens = perSecond
  let last = nowMs()
  return {
    take: () => {
      const now = nowMs()
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
