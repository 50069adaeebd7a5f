import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { RefreshFailure } from "../../src/errors/errors.js"
import { type RefreshedToken, TokenRefresher } from "../../src/services/TokenRefresher.js"

/** What one upstream call does: answer (fields over the default answer) or fail with a kind. */
export type Outcome =
  | { readonly _tag: "Answer"; readonly fields?: Partial<RefreshedToken> }
  | { readonly _tag: "Fail"; readonly reason: RefreshFailure["reason"] }

export const answer = (fields: Partial<RefreshedToken> = {}): Outcome => ({ _tag: "Answer", fields })
export const fail = (reason: RefreshFailure["reason"]): Outcome => ({ _tag: "Fail", reason })

/**
 * A token endpoint that does what the test says: each upstream call takes the
 * next scripted outcome (a default answer once the script is empty), counts
 * itself, records the refresh token it was given and, while a gate is set,
 * waits for the gate before answering (a slow provider).
 */
export interface ScriptedRefresher {
  readonly layer: Layer.Layer<TokenRefresher>
  readonly script: Array<Outcome>
  /** Refresh tokens presented, one per upstream call. */
  readonly presented: Array<string>
  readonly calls: () => number
  /** Makes the following calls wait until `open` (returns the gate). */
  readonly hold: () => Effect.Effect<Deferred.Deferred<void>>
  readonly open: Effect.Effect<void>
}

export const scriptedRefresher = (): ScriptedRefresher => {
  const script: Array<Outcome> = []
  const presented: Array<string> = []
  let gate: Deferred.Deferred<void> | undefined
  const refresh = (provider: { readonly name: string }, refreshToken: string) =>
    Effect.suspend(() => {
      presented.push(refreshToken)
      const n = presented.length
      const outcome = script.shift() ?? answer()
      const wait = gate === undefined ? Effect.void : Deferred.await(gate)
      return Effect.zipRight(
        wait,
        outcome._tag === "Fail"
          ? Effect.fail(
              new RefreshFailure({
                provider: provider.name,
                reason: outcome.reason,
                kind: outcome.reason === "Transient" ? "Network" : "ErrorAnswer",
                ...(outcome.reason === "Rejected" ? { error: "invalid_grant" as const } : {})
              })
            )
          : Effect.succeed<RefreshedToken>({
              access_token: `at-${n}`,
              token_type: "bearer",
              expires_in: 3600,
              refresh_token: `rt-${n}`,
              ...outcome.fields
            })
      )
    })
  return {
    layer: Layer.succeed(TokenRefresher, { refresh }),
    script,
    presented,
    calls: () => presented.length,
    hold: () =>
      Effect.map(Deferred.make<void>(), (deferred) => {
        gate = deferred
        return deferred
      }),
    open: Effect.suspend(() => {
      const current = gate
      gate = undefined
      return current === undefined ? Effect.void : Deferred.succeed(current, undefined)
    })
  }
}
