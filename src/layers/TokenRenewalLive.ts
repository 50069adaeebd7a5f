import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as FiberMap from "effect/FiberMap"
import * as Layer from "effect/Layer"
import * as Random from "effect/Random"
import type * as Scope from "effect/Scope"
import type { OAuthToken } from "../protocol/token.js"
import { OAuthProviders } from "../services/OAuthProviders.js"
import { REFRESH_COOLDOWN_MS, RefreshCoordinator } from "../services/RefreshCoordinator.js"
import {
  RENEWAL_MAX_JITTER_MS,
  renewalBackoffMs,
  renewalTime,
  TokenRenewal,
  type TokenRenewalShape
} from "../services/TokenRenewal.js"
import { type TokenKey, TokenStore, tokenKeyString } from "../services/TokenStore.js"

/** One timer fiber per provider:bucket, as `services/TokenRenewal.ts` describes. */

export interface TokenRenewalOptions {
  /** Milliseconds of jitter for one schedule; default uniform in 0..30 000 from the Effect `Random`. */
  readonly jitter?: Effect.Effect<number> | undefined
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
    const timers = yield* FiberMap.make<string>()
    const run = yield* FiberMap.runtime(timers)<never>()

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
          const stored = yield* Effect.either(tokens.getLatest(key))
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
      scheduled: FiberMap.size(timers),
      renewals: () => [...scheduledFor].map(([key, { expiry }]) => ({ key, expiry }))
    })
  })

/** Proactive renewal in the scope of the Layer (the server's): no timer outlives it. */
export const layer = (
  options: TokenRenewalOptions = {}
): Layer.Layer<TokenRenewal, never, TokenStore | OAuthProviders | RefreshCoordinator> =>
  Layer.scoped(TokenRenewal, make(options))
