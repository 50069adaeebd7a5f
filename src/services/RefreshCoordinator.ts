import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import type {
  NotFound,
  ProviderNotFound,
  ReauthRequired,
  RefreshCooldown,
  RefreshFailure,
  StoreError
} from "../errors/errors.js"
import { OAuthToken } from "../protocol/token.js"
import type { RefreshedToken } from "./TokenRefresher.js"
import type { TokenKey } from "./TokenStore.js"

/**
 * The one way a stored token gets refreshed (PROTOCOL.md §6 `refresh_token`),
 * shared by the socket operation, proactive renewal and `credproxy token
 * refresh`. The rules are here; `layers/RefreshCoordinatorLive.ts` applies
 * them under the provider:bucket lock.
 */

/** At most one upstream refresh per provider:bucket in this long (§10). */
export const REFRESH_COOLDOWN_MS = 30_000
/** `refresh_token` leaves a token alone while it stays valid for more than this. */
export const VALIDITY_MARGIN_MS = 30_000
/** An answer without `expires_in` is taken to be valid for this long. */
export const DEFAULT_EXPIRES_IN_SECONDS = 3600
/** One call to a provider's endpoint may take this long (§10). */
export const PROVIDER_CALL_TIMEOUT_MS = 15_000
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
  /** The keys refreshed upstream lately (within the cooldown), for `credproxy status`. */
  readonly recentRefreshes: () => ReadonlyArray<RecentRefresh>
}

/** A provider:bucket refreshed upstream within the last REFRESH_COOLDOWN_MS. */
export interface RecentRefresh {
  /** `provider:bucket`. */
  readonly key: string
  readonly msAgo: number
  /** How long the cooldown still holds another upstream refresh of it back. */
  readonly cooldownLeftMs: number
}

export class RefreshCoordinator extends Context.Tag("credproxy/RefreshCoordinator")<
  RefreshCoordinator,
  RefreshCoordinatorShape
>() {}

export const hasRefreshToken = (token: OAuthToken): boolean =>
  token.refresh_token !== undefined && token.refresh_token !== ""

/** Valid for `refresh_token`: expiring more than VALIDITY_MARGIN_MS after `nowMs`. */
export const isValidAt = (token: OAuthToken, nowMs: number): boolean =>
  token.expiry * 1000 > nowMs + VALIDITY_MARGIN_MS

const decodeToken = Schema.decodeUnknownEither(OAuthToken)

/**
 * The provider's answer as token fields: `expires_in` becomes `expiry`
 * (seconds since the epoch), and a `token_type` that differs from the stored
 * one only in case (oauth4webapi lowercases it) keeps the stored spelling
 * (a login has no stored token: `stored` is undefined).
 * `Left` when the answer does not make a usable token.
 */
export const answerToToken = (
  answer: RefreshedToken,
  stored: Pick<OAuthToken, "token_type"> | undefined,
  nowMs: number
): Either.Either<OAuthToken, void> => {
  const { expires_in, ...fields } = answer
  const lifetime =
    typeof expires_in === "number" && Number.isFinite(expires_in) && expires_in >= 0
      ? expires_in
      : DEFAULT_EXPIRES_IN_SECONDS
  const tokenType =
    stored !== undefined &&
    typeof answer.token_type === "string" &&
    answer.token_type.toLowerCase() === stored.token_type.toLowerCase()
      ? stored.token_type
      : answer.token_type
  return Either.mapLeft(
    decodeToken({ ...fields, token_type: tokenType, expiry: Math.floor(nowMs / 1000 + lifetime) }),
    () => undefined
  )
}
