import type { ProxyError } from "../errors/errors.js"
import { DEFAULT_BUCKET } from "../protocol/names.js"
import type { DecodedRequest } from "../protocol/operations.js"
import type { AuditLogShape } from "../services/AuditLog.js"
import type { DeadlineWatch } from "./deadline-watch.js"
import type { ServerStatus } from "./ServerStatus.js"

/**
 * Counts every answered request (by op and outcome) and writes its audit
 * line (§12): op, names, outcome, duration; never a secret. Store failures
 * and defects also get an error line with their reason and code. The
 * per-request debug line costs nothing when the level is off: the start time
 * is not even read.
 */
export interface RequestLog {
  /** When a request started (Clock ms), or 0 when request lines are off. */
  readonly start: () => number
  readonly record: (
    op: string,
    request: DecodedRequest | undefined,
    outcome: string,
    started: number,
    error: ProxyError | undefined
  ) => void
}

/** The names a request touches, for its audit line. */
const namesOf = (request: DecodedRequest | undefined): Readonly<Record<string, string>> => {
  if (request === undefined) return {}
  const payload = request.payload as {
    readonly provider?: string
    readonly bucket?: string
    readonly name?: string
  }
  if (payload.name !== undefined) return { key: payload.name }
  if (payload.provider === undefined) return {}
  return request.op === "list_buckets"
    ? { provider: payload.provider }
    : { provider: payload.provider, bucket: payload.bucket ?? DEFAULT_BUCKET }
}

export const makeRequestLog = (
  audit: AuditLogShape,
  status: ServerStatus,
  deadlines: DeadlineWatch
): RequestLog => ({
  start: audit.requestsEnabled ? () => deadlines.now() : () => 0,
  record: (op, request, outcome, started, error) => {
    status.request(op, outcome)
    if (error !== undefined) logFailure(audit, op, error)
    if (audit.requestsEnabled) {
      audit.request({ op, ...namesOf(request), outcome, durationMs: deadlines.now() - started })
    }
  }
})

const logFailure = (audit: AuditLogShape, op: string, error: ProxyError): void => {
  switch (error._tag) {
    case "StoreFailure":
      audit.event("Error", "store call failed", {
        op,
        operation: error.operation,
        reason: error.reason,
        ...(error.code === undefined ? {} : { code: error.code })
      })
      return
    case "StoreTimeout":
      audit.event("Error", "store call timed out", { op, operation: error.operation })
      return
    case "HandlerDefect":
      if (error.name !== "Interrupted")
        audit.event("Error", "request handler died", { op, defect: error.name })
      return
    default:
      return
  }
}
