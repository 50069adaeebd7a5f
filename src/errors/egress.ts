import * as Schema from "effect/Schema"
import { WireCode } from "../protocol/wire-codes.js"
import type { RefreshError } from "../services/RefreshCoordinator.js"
import type { StoreError } from "./errors.js"
import { toWireError } from "./wire-error.js"

/**
 * Why the egress proxy answered a request itself instead of forwarding it
 * (docs/PROTOCOL.md §23). Only the reason is kept: never a header, a path or
 * a value the sandbox sent.
 */
export class EgressRefused extends Schema.TaggedError<EgressRefused>()("EgressRefused", {
  reason: Schema.Literal(
    "UnknownRoute",
    "Phantom",
    "NotAllowed",
    "Policy",
    "BadTarget",
    "BodyTooLarge",
    "Busy",
    "ConnectTimeout",
    "UpstreamIdle",
    "UpstreamUnreachable",
    "Stopping"
  )
}) {}

/** What the egress proxy answers: an HTTP status, a §11 code, a safe message. */
export interface EgressAnswer {
  readonly status: number
  readonly code: string
  readonly message: string
  readonly retryAfter?: number
}

const REFUSALS: Record<EgressRefused["reason"], EgressAnswer> = {
  UnknownRoute: { status: 404, code: WireCode.NOT_FOUND, message: "no such egress route" },
  Phantom: { status: 401, code: WireCode.UNAUTHORIZED, message: "phantom missing or wrong" },
  NotAllowed: { status: 403, code: WireCode.FORBIDDEN, message: "method and path not allowed on this route" },
  Policy: { status: 403, code: WireCode.FORBIDDEN, message: "credential not allowed by the access policy" },
  BadTarget: { status: 400, code: WireCode.INVALID_REQUEST, message: "request target not usable" },
  BodyTooLarge: { status: 413, code: WireCode.INVALID_REQUEST, message: "request body too large" },
  Busy: { status: 429, code: WireCode.RATE_LIMITED, message: "too many requests in flight", retryAfter: 1 },
  ConnectTimeout: {
    status: 504,
    code: WireCode.INTERNAL_ERROR,
    message: "upstream did not accept the connection in time"
  },
  UpstreamIdle: { status: 504, code: WireCode.INTERNAL_ERROR, message: "upstream sent nothing in time" },
  UpstreamUnreachable: { status: 502, code: WireCode.INTERNAL_ERROR, message: "upstream unreachable" },
  Stopping: { status: 503, code: WireCode.INTERNAL_ERROR, message: "the proxy is stopping" }
}

/** Every failure an egress request can end in before the upstream answers. */
export type EgressError = EgressRefused | RefreshError | StoreError

/**
 * The one place where an egress failure becomes an HTTP answer: the proxy's
 * own refusals by their table, a credential that cannot be had (not stored,
 * refresh failed) as 502 with the code and text the socket would give.
 */
export const toEgressAnswer = (error: EgressError): EgressAnswer => {
  if (error._tag === "EgressRefused") return REFUSALS[error.reason]
  const wire = toWireError(error)
  return { status: 502, ...wire }
}

/** The JSON body of an answer the proxy makes itself. */
export const egressAnswerBody = (answer: EgressAnswer): string =>
  JSON.stringify({ error: { type: "credproxy", code: answer.code, message: answer.message } })
