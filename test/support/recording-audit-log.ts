import * as Layer from "effect/Layer"
import { type AuditEntry, type AuditLevel, AuditLog } from "../../src/services/AuditLog.js"

/** An audit log that keeps everything in memory, for tests that check what was logged. */
export interface AuditRecording {
  readonly requests: Array<AuditEntry>
  readonly events: Array<{ level: AuditLevel; message: string; fields?: Readonly<Record<string, unknown>> }>
}

export const layer = (recording: AuditRecording) =>
  Layer.succeed(AuditLog, {
    requestsEnabled: true,
    request: (entry) => {
      recording.requests.push(entry)
    },
    event: (level, message, fields) => {
      recording.events.push(fields === undefined ? { level, message } : { level, message, fields })
    }
  })

export const makeRecording = (): AuditRecording => ({ requests: [], events: [] })
