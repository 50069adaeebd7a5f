import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type { Unauthorized } from "../errors/errors.js"

/**
 * Confirm on first use (`serve --confirm`): the first use of each credential
 * by each sandbox identity waits until the user answers on the host —
 * `once` (this use), `session` (every use by that identity until the server
 * stops) or `deny` — and is refused (`UNAUTHORIZED` "not confirmed on the
 * host") without an answer within CONFIRM_TIMEOUT_MS. Asks for the same
 * identity and credential made while one is waiting share its answer.
 */

/** How long a use waits for the user's answer. */
export const CONFIRM_TIMEOUT_MS = 60_000
/** Uses that may wait at once, over every connection; past it a new one is refused at once. */
export const MAX_WAITING = 256

/** Who asks: the connection's identity (peer uid and capability token), and its peer for the user to see. */
export interface Asker {
  /** `uid:{uid}` and a digest of the capability token presented (or `none`): never the token itself. */
  readonly identity: string
  readonly peerUid?: number
  readonly peerPid?: number
}

/** A use waiting for the user's answer, as `credproxy approve` lists it. */
export interface Waiting {
  readonly id: string
  /** `token provider:bucket` or `key name`. */
  readonly credential: string
  readonly op: string
  readonly peerUid?: number
  readonly peerPid?: number
  readonly secondsLeft: number
}

export type ConfirmAnswer = "once" | "session" | "deny"

export interface ConfirmationsShape {
  /** Whether uses must be confirmed at all (off: nothing below is ever asked). */
  readonly enabled: boolean
  /** Whether `identity` may use `credential` without asking (approved for the session). Synchronous. */
  readonly approved: (identity: string, credential: string) => boolean
  /** Waits for the user's answer: succeeds when approved, else `Unauthorized` (`NotConfirmed`). */
  readonly ask: (asker: Asker, credential: string, op: string) => Effect.Effect<void, Unauthorized>
  readonly waiting: () => ReadonlyArray<Waiting>
  /** Answers the waiting use `id`; false when there is none (answered, timed out, or never was). */
  readonly answer: (id: string, answer: ConfirmAnswer) => boolean
}

export class Confirmations extends Context.Tag("credproxy/Confirmations")<
  Confirmations,
  ConfirmationsShape
>() {}
