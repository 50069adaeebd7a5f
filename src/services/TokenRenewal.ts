import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type { OAuthToken } from "../protocol/token.js"
import { REFRESH_COOLDOWN_MS } from "./RefreshCoordinator.js"
import type { TokenKey } from "./TokenStore.js"

/**
 * Proactive renewal: the first `get_token` of a provider:bucket whose token
 * can be refreshed starts one timer fiber for that key, which renews the
 * token at `expiry − max(300 s, 10% of the time left) − jitter(0–30 s)`
 * through the refresh coordinator (so it shares the lock, the cooldown and
 * the "someone else already renewed it" check with `refresh_token`). When
 * the timer fires it reads the wall clock and the stored token again: a
 * machine that slept wakes up late and renews at once; a token renewed by
 * another process is only rescheduled. A success schedules the next renewal;
 * a failure retries with exponential backoff. A token that is gone, has no
 * refresh token or was rejected ends the fiber (the next `get_token` starts
 * a new one). The fibers live in a `FiberMap` keyed by provider:bucket, in
 * the scope of the Layer: stopping the server interrupts every one.
 * Timers are not persisted. The timers are `layers/TokenRenewalLive.ts`.
 */

export const RENEWAL_MIN_LEAD_MS = 300_000
export const RENEWAL_LEAD_FRACTION = 0.1
export const RENEWAL_MAX_JITTER_MS = 30_000
/** Backoff after a failed renewal: 30 s (the refresh cooldown), doubling, at most 10 min. */
export const RENEWAL_BACKOFF_BASE_MS = REFRESH_COOLDOWN_MS
export const RENEWAL_BACKOFF_MAX_MS = 600_000

/** When to renew a token that expires at `expiryMs`, seen at `nowMs` (both Clock milliseconds). */
export const renewalTime = (expiryMs: number, nowMs: number, jitterMs: number): number =>
  expiryMs - Math.max(RENEWAL_MIN_LEAD_MS, RENEWAL_LEAD_FRACTION * (expiryMs - nowMs)) - jitterMs

/** The pause before retrying after the `failures`-th failure in a row (1, 2, ...). */
export const renewalBackoffMs = (failures: number): number =>
  Math.min(RENEWAL_BACKOFF_MAX_MS, RENEWAL_BACKOFF_BASE_MS * 2 ** Math.max(0, failures - 1))

export interface TokenRenewalShape {
  /**
   * Called by `get_token` with the token it answers. A Map lookup when the
   * key is already scheduled, and no work at all for a token that cannot be
   * refreshed (no refresh token, or no configured provider); otherwise it
   * forks the key's timer fiber. Synchronous, never fails.
   */
  readonly watch: (key: TokenKey, token: OAuthToken) => void
  /** How many keys have a timer fiber now. */
  readonly scheduled: Effect.Effect<number>
  /** The keys with a renewal timer and the expiry (seconds) it is scheduled for, for `credproxy status`. */
  readonly renewals: () => ReadonlyArray<{ readonly key: string; readonly expiry: number }>
}

export class TokenRenewal extends Context.Tag("credproxy/TokenRenewal")<TokenRenewal, TokenRenewalShape>() {}
