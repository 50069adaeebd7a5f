import * as Context from "effect/Context"

/** One line per request (PROTOCOL.md §12): never a secret, only names, outcome and duration. */
export interface AuditEntry {
  readonly op: string
  readonly provider?: string
  readonly bucket?: string
  readonly key?: string
  /** `ok` or the wire code the request ended with. */
  readonly outcome: string
  readonly durationMs: number
}

export type AuditLevel = "Error" | "Warning" | "Info" | "Debug"

/**
 * The server's log, callable from the synchronous request path. Whether the
 * per-request line is written is decided once (`requestsEnabled`), so at the
 * default level a request costs no logging work at all.
 */
export interface AuditLogShape {
  readonly requestsEnabled: boolean
  readonly request: (entry: AuditEntry) => void
  readonly event: (level: AuditLevel, message: string, fields?: Readonly<Record<string, unknown>>) => void
}

export class AuditLog extends Context.Tag("credproxy/AuditLog")<AuditLog, AuditLogShape>() {}
