import type * as Effect from "effect/Effect"
import type * as Fiber from "effect/Fiber"
import type { DecodedRequest } from "../protocol/operations.js"
import type { AuditLogShape } from "../services/AuditLog.js"
import type { Connection } from "./connection.js"
import type { DeadlineWatch } from "./deadline-watch.js"
import type { Handled } from "./handled.js"
import type { HandshakeRead } from "./read-handshake.js"
import type { RequestReader } from "./read-request.js"
import type { RequestLog } from "./request-log.js"
import type { ServerConfigShape } from "./ServerConfig.js"
import type { ServerStatus } from "./ServerStatus.js"

/** What every connection of one server shares. */
export interface ConnectionContext {
  readonly readHandshake: (bytes: Buffer) => HandshakeRead
  /** The request reader of each protocol version. */
  readonly readerFor: (version: number) => RequestReader
  /** Access policy, then the operation's handler (PROTOCOL.md §14, after the reader's checks); `identity` is the caller's. */
  readonly handle: (request: Exclude<DecodedRequest, { readonly op: "cancel" }>, identity: string) => Handled
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
