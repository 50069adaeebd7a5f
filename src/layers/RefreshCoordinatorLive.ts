import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as FiberSet from "effect/FiberSet"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import {
  NotFound,
  ProviderNotFound,
  ReauthRequired,
  RefreshCooldown,
  RefreshFailure
} from "../errors/errors.js"
import { monotonicMillis } from "../lib/monotonic.js"
import { mergeTokens, type OAuthToken, withoutRefreshToken } from "../protocol/token.js"
import { type OAuthProvider, OAuthProviders } from "../services/OAuthProviders.js"
import {
  answerToToken,
  hasRefreshToken,
  isValidAt,
  PROVIDER_CALL_TIMEOUT_MS,
  REFRESH_COOLDOWN_MS,
  RefreshCoordinator,
  type RefreshCoordinatorShape,
  type RefreshError,
  retrySchedule
} from "../services/RefreshCoordinator.js"
import { TokenRefresher } from "../services/TokenRefresher.js"
import { type TokenKey, TokenStore, tokenKeyString } from "../services/TokenStore.js"

/**
 * The refresh coordinator over the token store (whose calls carry their own
 * deadline), the configured providers and a refresher. Checks in order: a
 * token is stored → its provider is configured → it has a refresh token.
 * Then, holding the provider:bucket lock (the one `save_token` and
 * `remove_token` take, across processes too): re-read the token and answer
 * it as it is when it no longer needs a refresh (another request or process
 * refreshed it meanwhile); inside the 30 s cooldown of this key answer it
 * while it is still valid, else `RefreshCooldown`; otherwise call the
 * provider (transient failures retried after 1 s and 3 s), merge (§7) and
 * save. A rejected refresh token is cleared from the store (the rest of the
 * token stays) and the answer is `ReauthRequired`.
 *
 * Concurrent refreshes of one key therefore cause one upstream call: the
 * first holds the lock while it refreshes, the rest re-read a valid token.
 */

export interface RefreshCoordinatorOptions {
  /** Deadline of one provider call (§10: 15 s). */
  readonly providerTimeoutMs?: number | undefined
}

export const make = (
  options: RefreshCoordinatorOptions = {}
): Effect.Effect<
  RefreshCoordinatorShape,
  never,
  Scope.Scope | TokenStore | OAuthProviders | TokenRefresher
> =>
  Effect.gen(function* () {
    const tokens = yield* TokenStore
    const providers = yield* OAuthProviders
    const refresher = yield* TokenRefresher
    const timeout = Duration.millis(options.providerTimeoutMs ?? PROVIDER_CALL_TIMEOUT_MS)
    const clock = yield* Effect.clock
    /** When (monotonic Clock ms) the last upstream refresh of a key ended, success or not. */
    const lastRefresh = new Map<string, number>()

    /** One upstream call under the §10 deadline; transient failures retried on `retrySchedule`. */
    const callProvider = (provider: OAuthProvider, refreshToken: string) =>
      refresher.refresh(provider, refreshToken).pipe(
        Effect.timeoutFail({
          duration: timeout,
          onTimeout: () =>
            new RefreshFailure({ provider: provider.name, reason: "Transient", kind: "Timeout" })
        }),
        Effect.tapError((error) =>
          Effect.logWarning("token refresh attempt failed").pipe(
            Effect.annotateLogs({ reason: error.reason, detail: error.detail })
          )
        ),
        Effect.retry({ schedule: retrySchedule, while: (error) => error.reason === "Transient" })
      )

    /** The checks before the lock (§6 order); the token they read may be up to 1 s old. */
    const precheck = (key: TokenKey): Effect.Effect<OAuthProvider, RefreshError> =>
      Effect.flatMap(tokens.get(key), (token): Effect.Effect<OAuthProvider, RefreshError> => {
        if (token === undefined) return Effect.fail(new NotFound({ what: "token" }))
        const provider = providers.get(key.provider)
        if (provider === undefined) return Effect.fail(new ProviderNotFound({ provider: key.provider }))
        if (!hasRefreshToken(token)) return Effect.fail(new ReauthRequired({ reason: "NoRefreshToken" }))
        return Effect.succeed(provider)
      })

    /** The cooldown rule: `undefined` when a refresh may go ahead, else what to answer instead. */
    const cooldown = (id: string, current: OAuthToken, nowMs: number) => {
      const last = lastRefresh.get(id)
      if (last === undefined) return undefined
      const left = last + REFRESH_COOLDOWN_MS - monotonicMillis(clock)
      if (left <= 0) {
        lastRefresh.delete(id)
        return undefined
      }
      return current.expiry * 1000 > nowMs
        ? Effect.succeed(current)
        : Effect.fail(new RefreshCooldown({ retryAfter: Math.ceil(left / 1000) }))
    }

    /** The answer of a provider that rejected the refresh token: clear it, log, ask for a new login. */
    const rejected = (key: TokenKey, current: OAuthToken, error: RefreshFailure) =>
      tokens
        .save(key, withoutRefreshToken(current))
        .pipe(
          Effect.zipRight(
            Effect.logWarning("the provider rejected the refresh token; cleared it: log in again").pipe(
              Effect.annotateLogs({ detail: error.detail })
            )
          ),
          Effect.zipRight(Effect.fail(new ReauthRequired({ reason: "Rejected" })))
        )

    /** The locked part; `upToDate` says whether the re-read token needs no refresh. */
    const refreshLocked = (
      key: TokenKey,
      provider: OAuthProvider,
      upToDate: (token: OAuthToken, nowMs: number) => boolean
    ): Effect.Effect<OAuthToken, RefreshError> =>
      Effect.scoped(
        Effect.gen(function* () {
          yield* tokens.lock(key)
          const current = yield* tokens.getLatest(key)
          if (current === undefined) return yield* new NotFound({ what: "token" })
          const now = yield* Clock.currentTimeMillis
          if (upToDate(current, now)) return current
          const id = tokenKeyString(key)
          const blocked = cooldown(id, current, now)
          if (blocked !== undefined) return yield* blocked
          const refreshToken = current.refresh_token
          if (refreshToken === undefined || refreshToken === "") {
            return yield* new ReauthRequired({ reason: "NoRefreshToken" })
          }
          const answer = yield* callProvider(provider, refreshToken).pipe(
            Effect.ensuring(Effect.sync(() => lastRefresh.set(id, monotonicMillis(clock)))),
            Effect.catchIf(
              (error) => error.reason === "Rejected",
              (error) => rejected(key, current, error)
            )
          )
          const incoming = answerToToken(answer, current, yield* Clock.currentTimeMillis)
          if (Either.isLeft(incoming)) {
            return yield* new RefreshFailure({
              provider: provider.name,
              reason: "Invalid",
              kind: "Malformed"
            })
          }
          const refreshed = mergeTokens(current, incoming.right)
          yield* tokens.save(key, refreshed)
          yield* Effect.logInfo("token refreshed").pipe(Effect.annotateLogs({ expiry: refreshed.expiry }))
          return refreshed
        })
      )

    /**
     * A refresh, once started, runs to its end even when its caller goes away
     * (client gone, request interrupted, a renewal timer restarted): a provider
     * that rotates refresh tokens has spent the old one the moment it answers,
     * so its answer must reach the store. It runs in the coordinator's own set
     * (stopped only with the coordinator) and the caller merely waits for it.
     */
    const refreshes = yield* FiberSet.make<OAuthToken, RefreshError>()
    // Its failure is answered by the caller; the runtime must not log it again with its whole cause.
    const fork = yield* FiberSet.runtime(refreshes)<never>().pipe(
      Effect.withUnhandledErrorLogLevel(Option.none())
    )
    const run = (key: TokenKey, upToDate: (token: OAuthToken, nowMs: number) => boolean) =>
      Effect.flatMap(precheck(key), (provider) =>
        Effect.suspend(() =>
          Fiber.join(
            fork(
              refreshLocked(key, provider, upToDate).pipe(
                Effect.annotateLogs({ provider: key.provider, bucket: key.bucket })
              )
            )
          )
        )
      )

    return RefreshCoordinator.of({
      refresh: (key) => run(key, isValidAt),
      renew: (key, expiry) => run(key, (token) => token.expiry > expiry),
      recentRefreshes: () => {
        const now = monotonicMillis(clock)
        return [...lastRefresh]
          .map(([key, at]) => ({ key, msAgo: now - at, cooldownLeftMs: at + REFRESH_COOLDOWN_MS - now }))
          .filter((recent) => recent.cooldownLeftMs > 0)
      }
    })
  })

/** The coordinator over the store, providers and refresher in context. */
export const layer = (
  options: RefreshCoordinatorOptions = {}
): Layer.Layer<RefreshCoordinator, never, TokenStore | OAuthProviders | TokenRefresher> =>
  Layer.scoped(RefreshCoordinator, make(options))
