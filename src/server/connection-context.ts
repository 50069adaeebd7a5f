import type * as Effect from "effect/Effect"
import type * as Fiber from "effect/Fiber"
import type { DecodedRequest } from "../protocol/operations.js"
import type { AuditLogShape } from "../services/AuditLog.js"
import type { Asker } from "../services/Confirmations.js"
import type { Connection } from "./connection.js"
import type { Session } from "./connection-requests.js"
import type { DeadlineWatch } from "./deadline-watch.js"
import type { Handled } from "./handled.js"
import type { HandshakeRead } from "./read-handshake.js"
import type { RequestLog } from "./request-log.js"
import type { ServerConfigShape } from "./ServerConfig.js"
import type { ConnectionInfo, ServerStatus } from "./ServerStatus.js"

export type HandshakeAccepted = Extract<HandshakeRead, { readonly _tag: "Accepted" }>

/** What every connection of one server shares. */
export interface ConnectionContext {
  readonly readHandshake: (bytes: Buffer) => HandshakeRead
  /** A connection's session once its handshake was accepted: version, request reader, identity. */
  readonly openSession: (accepted: HandshakeAccepted, info: ConnectionInfo) => Session
  /** Access policy, confirmation, then the operation's handler (PROTOCOL.md §14, after the reader's checks). */
  readonly handle: (request: Exclude<DecodedRequest, { readonly op: "cancel" }>, asker: Asker) => Handled
  /** The server is stopping: every request is answered at once (§21). */
  readonly stopping: () => boolean
  readonly requests: RequestLog
  readonly audit: AuditLogShape
  readonly status: ServerStatus
  readonly deadlines: DeadlineWatch
  /** Runs a request's work as a fiber of the server (interrupted when the server stops). */
  readonly fork: <A, E>(effect: Effect.Effect<A, E>) => Fiber.RuntimeFiber<A, E>
  readonly config: ServerConfigShape
  readonly onClosed: (connection: Connection) => void
  /** The connection completed its handshake (it no longer counts against the handshake share). */
  readonly onHandshaken: (connection: Connection) => void
}
