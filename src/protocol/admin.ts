import * as Schema from "effect/Schema"

/**
 * The operations of the host-only admin socket (`{dataDir}/run/{pid}.sock`):
 * the same framing, handshake and envelope as the sandbox socket, and a
 * different set of operations. Neither socket knows the other's operations.
 */

/** A pattern as `credproxy policy` takes it; the policy checks its form. */
const PolicySpec = Schema.String.pipe(Schema.maxLength(300))

/** A pending confirmation's id, as `approvals` lists it. */
export const ApprovalId = Schema.String.pipe(Schema.pattern(/^[0-9a-f]{8}$/))

export const AdminPayloads = {
  /** Everything `credproxy status` shows. */
  status: Schema.Struct({}),
  /** The access policy's rules in force. */
  policy_show: Schema.Struct({}),
  policy_change: Schema.Struct({
    kind: Schema.Literal("allow", "deny", "allow-key", "deny-key"),
    spec: PolicySpec
  }),
  /** Requests waiting for the user's confirmation (`serve --confirm`). */
  approvals: Schema.Struct({}),
  approve: Schema.Struct({ id: ApprovalId, answer: Schema.Literal("once", "session", "deny") })
} as const

export type AdminOperation = keyof typeof AdminPayloads

export type AdminRequest = {
  readonly [Op in AdminOperation]: {
    readonly id: string
    readonly op: Op
    readonly payload: (typeof AdminPayloads)[Op]["Type"]
  }
}[AdminOperation]

/** What the policy operations answer. */
export const PolicyRulesData = Schema.Struct({
  allow: Schema.Array(Schema.String),
  deny: Schema.Array(Schema.String),
  allowKeys: Schema.Array(Schema.String),
  denyKeys: Schema.Array(Schema.String)
})

/** One request waiting for the user's answer. */
export const PendingApproval = Schema.Struct({
  id: ApprovalId,
  credential: Schema.String,
  op: Schema.String,
  peerPid: Schema.optional(Schema.Number),
  peerUid: Schema.optional(Schema.Number),
  /** Seconds left before it is refused. */
  secondsLeft: Schema.Number
})

export const ApprovalsData = Schema.Struct({ pending: Schema.Array(PendingApproval) })

export const ApproveData = Schema.Struct({ answered: Schema.Boolean })
