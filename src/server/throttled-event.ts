import type * as Clock from "effect/Clock"
import { monotonicMillis } from "../lib/monotonic.js"
import type { AuditLevel, AuditLogShape } from "../services/AuditLog.js"

/**
 * An audit event written at most once per interval, with the number of
 * occurrences left out since the last line: a flood of refused connections
 * must not turn into a flood of log lines.
 */
export const throttledEvent = (
  audit: AuditLogShape,
  clock: Clock.Clock,
  line: { readonly level: AuditLevel; readonly message: string },
  intervalMs = 1_000
) => {
  const { level, message } = line
  let last = Number.NEGATIVE_INFINITY
  let suppressed = 0
  return (fields: Readonly<Record<string, unknown>>): void => {
    const now = monotonicMillis(clock)
    if (now - last < intervalMs) {
      suppressed++
      return
    }
    audit.event(level, message, suppressed === 0 ? fields : { ...fields, notLoggedSinceLastLine: suppressed })
    last = now
    suppressed = 0
  }
}
