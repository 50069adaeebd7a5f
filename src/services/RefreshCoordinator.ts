import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as FiberSet from "effect/FiberSet"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import {
  NotFound,
  ProviderNotFound,
  ReauthRequired,
  RefreshCooldown,
  RefreshFailure,
  type StoreError,
  StoreTimeout
} from "../errors/errors.js"
import { STORE_CALL_TIMEOUT_MS } from "../protocol/limits.js"
import { mergeTokens, OAuthToken, withoutRefreshToken } from "../protocol/token.js"
import { monotonicMillis } from "./monotonic.js"
import { type OAuthProvider, OAuthProviders } from "./OAuthProviders.js"
import { type RefreshedToken, TokenRefresher } from "./TokenRefresher.js"
import { type TokenKey, TokenStore, tokenKeyString } from "./TokenStore.js"

/**
 * The one way a stored token gets refreshed (PROTOCOL.md §6 `refresh_token`),
 * shared by the socket operation, proactive renewal and `credproxy token
 * refresh`. Checks in order: a token is stored → its provider is configured →
 * it has a refresh token. Then, holding the provider:bucket lock (the one
 * `save_token` and `remove_token` take, across processes too): re-read the
 * token and answer it as it is when it no longer needs a refresh (another
 * request or process refreshed it meanwhile); inside the 30 s cooldown of
 * this key answer it while it is still valid, else `RefreshCooldown`;
 * otherwise call the provider (transient failures retried after 1 s and 3 s),
 * merge (§7) and save. A rejected refresh token is cleared from the store
 * (the rest of the token stays) and the answer is `ReauthRequired`.
 *
 * Concurrent refreshes of one key therefore cause one upstream call: the
 * first holds the lock while it refreshes, the rest re-read a valid token.
 */

/** At most one upstream refresh per provider:bucket in this long (§10). */
export const REFRESH_COOLDOWN_MS = 30_000
/** `refresh_token` leaves a token alone while it stays valid for more than this. */
export const VALIDITY_MARGIN_MS = 30_000
/** An answer without `expires_in` is taken to be valid for this long. */
export const DEFAULT_EXPIRES_IN_SECONDS = 3600
/** Transient failures are retried twice: after 1 s, then after 3 s. */
export const retrySchedule = Schedule.fromDelays(Duration.seconds(1), Duration.seconds(3))

export type RefreshError =
  | NotFound
  | ProviderNotFound
  | ReauthRequired
  | RefreshCooldown
  | RefreshFailure
  | StoreError

export interface RefreshCoordinatorShape {
  /** `refresh_token`: the stored token, refreshed unless it stays valid for more than VALIDITY_MARGIN_MS. */
  readonly refresh: (key: TokenKey) => Effect.Effect<OAuthToken, RefreshError>
  /**
   * Proactive renewal of the token that expires at `expiry` (seconds): refreshed
   * unless the stored token already expires later (someone renewed it meanwhile).
   */
  readonly renew: (key: TokenKey, expiry: number) => Effect.Effect<OAuthToken, RefreshError>
}

export class RefreshCoordinator extends Context.Tag("credproxy/RefreshCoordinator")<
  RefreshCoordinator,
  RefreshCoordinatorShape
>() {}

export interface RefreshCoordinatorOptions {
  /** Deadline of one store or provider call (§10: 15 s). */
  readonly callTimeoutMs?: number | undefined
}

const hasRefreshToken = (token: OAuthToken): boolean =>
  token.refresh_token !== undefined && token.refresh_token !== ""

const decodeToken = Schema.decodeUnknownEither(OAuthToken)

/**
 * The provider's answer as token fields: `expires_in` becomes `expiry`
 * (seconds since the epoch), and a `token_type` that differs from the stored
 * one only in case (oauth4webapi lowercases it) keeps the stored spelling.
 */
const answerToToken = (
  answer: RefreshedToken,
  stored: OAuthToken,
  nowMs: number
): Either.Either<OAuthToken, string> => {
  const { expires_in, ...fields } = answer
  const lifetime =
    typeof expires_in === "number" && Number.isFinite(expires_in) && expires_in >= 0
      ? expires_in
      : DEFAULT_EXPIRES_IN_SECONDS
  const tokenType =
    typeof answer.token_type === "string" &&
    answer.token_type.toLowerCase() === stored.token_type.toLowerCase()
      ? stored.token_type
      : answer.token_type
  return Either.mapLeft(
    decodeToken({ ...fields, token_type: tokenType, expiry: Math.floor(nowMs / 1000 + lifetime) }),
    () => "answer is not a usable token"
  )
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
    const timeout = Duration.millis(options.callTimeoutMs ?? STORE_CALL_TIMEOUT_MS)
    const clock = yield* Effect.clock
    /** When (monotonic Clock ms) the last upstream refresh of a key ended, success or not. */
    const lastRefresh = new Map<string, number>()

    const storeCall = <A, R>(operation: string, call: Effect.Effect<A, StoreError, R>) =>
      Effect.timeoutFail(call, { duration: timeout, onTimeout: () => new StoreTimeout({ operation }) })

    /** One upstream call under the §10 deadline; transient failures retried on `retrySchedule`. */
    const callProvider = (provider: OAuthProvider, refreshToken: string) =>
      refresher.refresh(provider, refreshToken).pipe(
        Effect.timeoutFail({
          duration: timeout,
          onTimeout: () =>
            new RefreshFailure({
              provider: provider.name,
              reason: "Transient",
              detail: `no answer within ${Duration.toSeconds(timeout)} s`
            })
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
      Effect.flatMap(
        storeCall("get token", tokens.get(key)),
        (token): Effect.Effect<OAuthProvider, RefreshError> => {
          if (token === undefined) return Effect.fail(new NotFound({ what: "token" }))
          const provider = providers.get(key.provider)
          if (provider === undefined) return Effect.fail(new ProviderNotFound({ provider: key.provider }))
          if (!hasRefreshToken(token)) return Effect.fail(new ReauthRequired({ reason: "NoRefreshToken" }))
          return Effect.succeed(provider)
        }
      )

    /** The locked part; `upToDate` says whether the re-read token needs no refresh. */
    const refreshLocked = (
      key: TokenKey,
      provider: OAuthProvider,
      upToDate: (token: OAuthToken, nowMs: number) => boolean
    ): Effect.Effect<OAuthToken, RefreshError> =>
      Effect.scoped(
        Effect.gen(function* () {
          yield* storeCall("lock token", tokens.lock(key))
          const current = yield* storeCall("read token", tokens.getLatest(key))
          if (current === undefined) return yield* new NotFound({ what: "token" })
          const now = yield* Clock.currentTimeMillis
          if (upToDate(current, now)) return current

          const id = tokenKeyString(key)
          const last = lastRefresh.get(id)
          if (last !== undefined) {
            const left = last + REFRESH_COOLDOWN_MS - monotonicMillis(clock)
            if (left > 0) {
              if (current.expiry * 1000 > now) return current
              return yield* new RefreshCooldown({ retryAfter: Math.ceil(left / 1000) })
            }
            lastRefresh.delete(id)
          }
          const refreshToken = current.refresh_token
          if (refreshToken === undefined || refreshToken === "") {
            return yield* new ReauthRequired({ reason: "NoRefreshToken" })
          }

          const answer = yield* callProvider(provider, refreshToken).pipe(
            Effect.ensuring(Effect.sync(() => lastRefresh.set(id, monotonicMillis(clock)))),
            Effect.catchIf(
              (error) => error.reason === "Rejected",
              (error) =>
                storeCall("save token", tokens.save(key, withoutRefreshToken(current))).pipe(
                  Effect.zipRight(
                    Effect.logWarning(
                      "the provider rejected the refresh token; cleared it: log in again"
                    ).pipe(Effect.annotateLogs({ detail: error.detail }))
                  ),
                  Effect.zipRight(Effect.fail(new ReauthRequired({ reason: "Rejected" })))
                )
            )
          )
          const refreshedAt = yield* Clock.currentTimeMillis
          const incoming = answerToToken(answer, current, refreshedAt)
          if (Either.isLeft(incoming)) {
            return yield* new RefreshFailure({
              provider: provider.name,
              reason: "Invalid",
              detail: incoming.left
            })
          }
          const refreshed = mergeTokens(current, incoming.right)
          yield* storeCall("save token", tokens.save(key, refreshed))
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
      refresh: (key) => run(key, (token, now) => token.expiry * 1000 > now + VALIDITY_MARGIN_MS),
      renew: (key, expiry) => run(key, (token) => token.expiry > expiry)
    })
  })

/** The coordinator over the store, providers and refresher in context. */
export const layer = (
  options: RefreshCoordinatorOptions = {}
): Layer.Layer<RefreshCoordinator, never, TokenStore | OAuthProviders | TokenRefresher> =>
  Layer.scoped(RefreshCoordinator, make(options))
