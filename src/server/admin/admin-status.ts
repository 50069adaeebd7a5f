import * as Schema from "effect/Schema"
import { PendingApproval, PolicyRulesData } from "../../protocol/admin.js"

/**
 * What `credproxy status` gets from a running server over its admin socket:
 * names, numbers and times, never a secret (no token, key, capability token
 * or identity digest). Decoded by the command with this schema.
 */

const Counts = Schema.Record({ key: Schema.String, value: Schema.Number })

export const ConnectionStatus = Schema.Struct({
  peerPid: Schema.optional(Schema.Number),
  peerUid: Schema.optional(Schema.Number),
  /** Wall clock, milliseconds since the epoch. */
  connectedAt: Schema.Number,
  /** The protocol version it settled on; absent before its handshake. */
  version: Schema.optional(Schema.Number),
  /** Requests answered, by op. */
  requests: Counts,
  inFlight: Schema.Number
})

export const RefreshStatus = Schema.Struct({
  /** `provider:bucket`. */
  key: Schema.String,
  /** Of the token the renewal timer watches (negative: expired). */
  expiresInSeconds: Schema.optional(Schema.Number),
  lastRefreshSecondsAgo: Schema.optional(Schema.Number),
  /** How long the 30 s cooldown still holds back another upstream refresh. */
  cooldownSeconds: Schema.optional(Schema.Number)
})

export const AuditLineData = Schema.Struct({
  at: Schema.Number,
  level: Schema.String,
  message: Schema.String,
  fields: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.Unknown }))
})

export const CountersData = Schema.Struct({
  connections: Schema.Struct({
    open: Schema.Number,
    total: Schema.Number,
    rejected: Counts,
    paused: Counts,
    heldAnswerBytes: Schema.Number
  }),
  requests: Schema.Record({ key: Schema.String, value: Counts }),
  requestsInFlight: Schema.Number,
  deadlinesPending: Schema.Number
})

export const AdminStatusData = Schema.Struct({
  pid: Schema.Number,
  /** Wall clock, milliseconds since the epoch. */
  startedAt: Schema.Number,
  uptimeSeconds: Schema.Number,
  sockets: Schema.Struct({ sandbox: Schema.String, admin: Schema.String }),
  restrict: Schema.Boolean,
  confirm: Schema.Boolean,
  capabilityToken: Schema.Boolean,
  policy: PolicyRulesData,
  connections: Schema.Array(ConnectionStatus),
  counters: CountersData,
  refresh: Schema.Array(RefreshStatus),
  waiting: Schema.Array(PendingApproval),
  audit: Schema.Array(AuditLineData)
})

export type AdminStatusData = typeof AdminStatusData.Type
