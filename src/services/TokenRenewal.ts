import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as FiberMap from "effect/FiberMap"
import * as Layer from "effect/Layer"
import * as Random from "effect/Random"
import type * as Scope from "effect/Scope"
import { StoreTimeout } from "../errors/errors.js"
import { STORE_CALL_TIMEOUT_MS } from "../protocol/limits.js"
import type { OAuthToken } from "../protocol/token.js"
import { OAuthProviders } from "./OAuthProviders.js"
import { REFRESH_COOLDOWN_MS, RefreshCoordinator } from "./RefreshCoordinator.js"
import { type TokenKey, TokenStore, tokenKeyString } from "./TokenStore.js"

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
 * Timers are not persisted.
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
}

export class TokenRenewal extends Context.Tag("credproxy/TokenRenewal")<TokenRenewal, TokenRenewalShape>() {}

export interface TokenRenewalOptions {
  /** Milliseconds of jitter for one schedule; default uniform in 0..30 000 from the Effect `Random`. */
  readonly jitter?: Effect.Effect<number> | undefined
  /** Deadline of the store read when a timer fires (§10: 15 s). */
  readonly callTimeoutMs?: number | undefined
}

const defaultJitter = Random.nextIntBetween(0, RENEWAL_MAX_JITTER_MS + 1)

/** The longest single sleep: a timer for longer (about 24.8 days) would never fire. */
const MAX_SLEEP_MS = 2 ** 31 - 1

/** Sleeps on the Clock until its time reaches `at`, re-reading it on every wake-up. */
const sleepUntil = (at: number): Effect.Effect<void> =>
  Effect.flatMap(Clock.currentTimeMillis, (now) =>
    now >= at
      ? Effect.void
      : Effect.zipRight(Effect.sleep(Duration.millis(Math.min(at - now, MAX_SLEEP_MS))), sleepUntil(at))
  )

export const make = (
  options: TokenRenewalOptions = {}
): Effect.Effect<TokenRenewalShape, never, Scope.Scope | TokenStore | OAuthProviders | RefreshCoordinator> =>
  Effect.gen(function* () {
    const tokens = yield* TokenStore
    const providers = yield* OAuthProviders
    const coordinator = yield* RefreshCoordinator
    const jitter = options.jitter ?? defaultJitter
    const timeout = Duration.millis(options.callTimeoutMs ?? STORE_CALL_TIMEOUT_MS)
    const timers = yield* FiberMap.make<string>()
    const run = yield* FiberMap.runtime(timers)<never>()

    const readStored = (key: TokenKey) =>
      Effect.timeoutFail(tokens.getLatest(key), {
        duration: timeout,
        onTimeout: () => new StoreTimeout({ operation: "read token" })
      })

    const schedule = (expiry: number, now: number, notBefore: number) =>
      Effect.map(jitter, (jitterMs) => Math.max(renewalTime(expiry * 1000, now, jitterMs), notBefore))

    /** The expiry each running timer is scheduled for (and which timer), so `watch` can tell a replaced token. */
    const scheduledFor = new Map<string, { expiry: number; readonly owner: object }>()

    /** The timer of one key; returns when there is nothing left to renew. */
    const timer = (key: TokenKey, first: OAuthToken, owner: object): Effect.Effect<void> => {
      const id = tokenKeyString(key)
      return Effect.gen(function* () {
        let expiry = first.expiry
        let failures = 0
        let at = yield* schedule(expiry, yield* Clock.currentTimeMillis, 0)
        for (;;) {
          const entry = scheduledFor.get(id)
          if (entry?.owner === owner) entry.expiry = expiry
          yield* Effect.logDebug("token renewal scheduled").pipe(Effect.annotateLogs({ atMs: at }))
          yield* sleepUntil(at)
          const now = yield* Clock.currentTimeMillis
          const stored = yield* Effect.either(readStored(key))
          if (Either.isLeft(stored)) {
            failures++
            at = now + renewalBackoffMs(failures)
            yield* Effect.logWarning("token renewal could not read the store; will retry")
            continue
          }
          const token = stored.right
          if (token === undefined || token.refresh_token === undefined || token.refresh_token === "") {
            return yield* Effect.logDebug("token renewal stopped: no token or no refresh token")
          }
          if (token.expiry > expiry) {
            // Renewed meanwhile (another process, a refresh_token request): only reschedule.
            expiry = token.expiry
            failures = 0
            at = yield* schedule(expiry, now, 0)
            continue
          }
          const renewed = yield* Effect.either(coordinator.renew(key, expiry))
          const after = yield* Clock.currentTimeMillis
          if (Either.isRight(renewed) && renewed.right.expiry > expiry) {
            expiry = renewed.right.expiry
            failures = 0
            // Never sooner than the cooldown, so a provider's very short tokens cannot make this spin.
            at = yield* schedule(expiry, after, after + REFRESH_COOLDOWN_MS)
            continue
          }
          if (Either.isLeft(renewed)) {
            const error = renewed.left
            if (
              error._tag === "NotFound" ||
              error._tag === "ProviderNotFound" ||
              error._tag === "ReauthRequired"
            ) {
              return yield* Effect.logInfo("token renewal stopped").pipe(
                Effect.annotateLogs({ reason: error._tag })
              )
            }
          }
          failures++
          at = after + renewalBackoffMs(failures)
          yield* Effect.logWarning("token renewal failed; will retry").pipe(
            Effect.annotateLogs({
              failures,
              outcome: Either.isLeft(renewed) ? renewed.left._tag : "not renewed",
              retryInSeconds: Math.round((at - after) / 1000)
            })
          )
        }
      }).pipe(
        Effect.catchAllCause((cause) =>
          Cause.isInterruptedOnly(cause)
            ? Effect.failCause(cause)
            : Effect.logError("token renewal failed unexpectedly", Cause.pretty(cause))
        ),
        Effect.ensuring(
          Effect.sync(() => {
            // Only this timer's own entry: a replacement may already have registered its own.
            if (scheduledFor.get(id)?.owner === owner) scheduledFor.delete(id)
          })
        ),
        Effect.annotateLogs({ provider: key.provider, bucket: key.bucket })
      )
    }

    return TokenRenewal.of({
      // On every get_token: the cheapest checks first, nothing allocated when nothing is to be done.
      watch: (key, token) => {
        if (token.refresh_token === undefined || token.refresh_token === "") return
        if (providers.get(key.provider) === undefined) return
        const id = tokenKeyString(key)
        const scheduled = scheduledFor.get(id)
        if (scheduled !== undefined && token.expiry >= scheduled.expiry) return
        // No timer, or the token was replaced by one that expires sooner: (re)start it.
        const owner = {}
        scheduledFor.set(id, { expiry: token.expiry, owner })
        run(id, timer(key, token, owner))
      },
      scheduled: FiberMap.size(timers)
    })
  })

/** Proactive renewal in the scope of the Layer (the server's): no timer outlives it. */
export const layer = (
  options: TokenRenewalOptions = {}
): Layer.Layer<TokenRenewal, never, TokenStore | OAuthProviders | RefreshCoordinator> =>
  Layer.scoped(TokenRenewal, make(options))
