import type { AuditLevel } from "../services/AuditLog.js"

/** Why a connection was closed by the server rather than by its peer; each is counted in the status. */
export type RejectReason =
  | "peer"
  | "max_connections"
  | "handshake_timeout"
  | "partial_frame_timeout"
  | "bad_handshake"
  | "unknown_version"
  | "capability_token"
  | "oversize_frame"
  | "buffer_cap"
  | "evicted"
  | "stopping"
  | "internal"

/** The log line of each reason a connection closes for (peer, max_connections and evicted are logged throttled, at accept). */
export const REJECTION_LOG: Readonly<
  Record<RejectReason, { readonly level: AuditLevel; readonly message: string }>
> = {
  peer: { level: "Warning", message: "connection refused: peer uid not allowed" },
  max_connections: { level: "Warning", message: "connection refused: too many connections" },
  handshake_timeout: { level: "Info", message: "handshake deadline passed; closing" },
  partial_frame_timeout: { level: "Info", message: "partial frame deadline passed; closing" },
  bad_handshake: { level: "Info", message: "handshake refused; closing" },
  unknown_version: { level: "Info", message: "handshake refused; closing" },
  capability_token: { level: "Info", message: "handshake refused; closing" },
  oversize_frame: { level: "Warning", message: "frame length over the limit; closing" },
  buffer_cap: { level: "Warning", message: "connection buffered too many unprocessed bytes; closing" },
  stopping: { level: "Info", message: "handshake while the server stops; closing" },
  evicted: { level: "Info", message: "connection without a handshake closed to make room for a new one" },
  internal: { level: "Error", message: "connection handler failed; closing the connection" }
}
