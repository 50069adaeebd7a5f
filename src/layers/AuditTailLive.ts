import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { AuditLog, type AuditLogShape } from "../services/AuditLog.js"
import { AUDIT_TAIL_LINES, type AuditLine, AuditTail } from "../services/AuditTail.js"

/**
 * Puts a tail on the audit log: every event at info and above is kept (the
 * last AUDIT_TAIL_LINES, oldest dropped first) as well as passed on. The
 * per-request line is not kept: it is debug-level and comes by the thousand.
 */
export const layer: Layer.Layer<AuditLog | AuditTail, never, AuditLog> = Layer.effectContext(
  Effect.gen(function* () {
    const base = yield* AuditLog
    const clock = yield* Effect.clock
    const lines: Array<AuditLine> = []
    const audit: AuditLogShape = {
      requestsEnabled: base.requestsEnabled,
      request: base.request,
      event: (level, message, fields) => {
        if (level !== "Debug") {
          if (lines.length === AUDIT_TAIL_LINES) lines.shift()
          const at = clock.unsafeCurrentTimeMillis()
          lines.push(fields === undefined ? { at, level, message } : { at, level, message, fields })
        }
        base.event(level, message, fields)
      }
    }
    return Context.make(AuditLog, audit).pipe(Context.add(AuditTail, { recent: () => [...lines] }))
  })
)
