import type * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type { OAuthProviders } from "../services/OAuthProviders.js"
import * as RefreshCoordinator from "../services/RefreshCoordinator.js"
import type { TokenRefresher } from "../services/TokenRefresher.js"
import * as TokenRenewal from "../services/TokenRenewal.js"
import type { TokenStore } from "../services/TokenStore.js"

export interface RefreshLayerOptions {
  /** Deadline of one store or provider call (§10: 15 s). */
  readonly callTimeoutMs?: number | undefined
  /** Jitter source of proactive renewal (tests make it fixed). */
  readonly jitter?: Effect.Effect<number> | undefined
}

/**
 * Adds the refresh coordinator and proactive renewal on top of `base` (the
 * token store, the providers and the refresher, and whatever else it
 * provides); everything in `base` stays available.
 */
export const withRefresh = <ROut, E>(
  base: Layer.Layer<ROut, E>,
  options: RefreshLayerOptions = {}
): Layer.Layer<
  ROut | RefreshCoordinator.RefreshCoordinator | TokenRenewal.TokenRenewal,
  E,
  Exclude<TokenStore | OAuthProviders | TokenRefresher, ROut>
> =>
  TokenRenewal.layer(options).pipe(
    Layer.provideMerge(RefreshCoordinator.layer(options)),
    Layer.provideMerge(base)
  )
