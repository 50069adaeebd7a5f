import * as Context from "effect/Context"
import type { AuditLevel } from "./AuditLog.js"

/** One audit event as `credproxy status` shows it: names and outcomes only, like the log line. */
export interface AuditLine {
  /** Wall clock, milliseconds since the epoch. */
  readonly at: number
  readonly level: AuditLevel
  readonly message: string
  readonly fields?: Readonly<Record<string, unknown>>
}

/** How many audit events the tail keeps. */
export const AUDIT_TAIL_LINES = 50

/**
 * The last audit events of the running server at info level and above
 * (whatever `--log-level` says), for `credproxy status`. Audit fields never
 * hold a secret, so neither does the tail.
 */
export interface AuditTailShape {
  readonly recent: () => ReadonlyArray<AuditLine>
}

export class AuditTail extends Context.Tag("credproxy/AuditTail")<AuditTail, AuditTailShape>() {}
