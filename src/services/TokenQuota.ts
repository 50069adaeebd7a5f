import * as Context from "effect/Context"

/**
 * How many provider:bucket tokens may still be created in this run (contract
 * §22: 256 through the socket). `save_token` and a login that stores a new
 * key both take a place; a write that fails gives it back; a removal never
 * does. The host's own commands are not limited. Layers:
 * `layers/TokenQuotaLive.ts`.
 */
export interface TokenQuotaShape {
  /** Takes a place; false when none is left. */
  readonly take: () => boolean
  /** Gives back a place taken for a write that failed. */
  readonly giveBack: () => void
}

export class TokenQuota extends Context.Tag("credproxy/TokenQuota")<TokenQuota, TokenQuotaShape>() {}
