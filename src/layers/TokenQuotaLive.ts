import * as Layer from "effect/Layer"
import { TokenQuota, type TokenQuotaShape } from "../services/TokenQuota.js"

/** A quota of `limit` new tokens for the run, counted in memory. */
export const make = (limit: number): TokenQuotaShape => {
  let taken = 0
  return {
    take: () => {
      if (taken >= limit) return false
      taken++
      return true
    },
    giveBack: () => {
      taken = Math.max(0, taken - 1)
    }
  }
}

export const layer = (limit: number): Layer.Layer<TokenQuota> => Layer.sync(TokenQuota, () => make(limit))

/** No limit: for the host's own commands (`credproxy login`). */
export const unlimited: Layer.Layer<TokenQuota> = Layer.succeed(TokenQuota, {
  take: () => true,
  giveBack: () => {}
})
