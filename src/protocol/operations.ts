import * as Schema from "effect/Schema"
import { MAX_ID_LENGTH } from "./limits.js"
import { ExchangeData, InitiateData, PastedCode, PollData, SessionId } from "./login.js"
import { Name } from "./names.js"
import { OAuthToken, SanitizedToken } from "./token.js"

/**
 * A request id (§5): a non-empty string of at most 128 UTF-16 code units,
 * echoed in the answer. The predicate is the rule (read on every request, it
 * must be cheap); the schema is built from it.
 */
export const isRequestId = (value: unknown): value is string =>
  typeof value === "string" && value.length > 0 && value.length <= MAX_ID_LENGTH
export const RequestId = Schema.String.pipe(
  Schema.filter(isRequestId, {
    message: () => `must be a non-empty string of at most ${MAX_ID_LENGTH} characters`
  })
)

/**
 * Every operation of PROTOCOL.md §6 (and `cancel`, §20): its payload schema
 * and the schema of the `data` it answers with. Unknown fields are ignored
 * (dropped by decoding); `bucket` is optional but never null.
 */
const TokenAddress = { provider: Name, bucket: Schema.optionalWith(Name, { exact: true }) }

export const OperationPayloads = {
  get_token: Schema.Struct(TokenAddress),
  save_token: Schema.Struct({ ...TokenAddress, token: OAuthToken }),
  remove_token: Schema.Struct(TokenAddress),
  list_providers: Schema.Struct({}),
  list_buckets: Schema.Struct({ provider: Name }),
  get_bucket_stats: Schema.Struct(TokenAddress),
  get_api_key: Schema.Struct({ name: Name }),
  has_api_key: Schema.Struct({ name: Name }),
  list_api_keys: Schema.Struct({}),
  refresh_token: Schema.Struct(TokenAddress),
  oauth_initiate: Schema.Struct(TokenAddress),
  oauth_exchange: Schema.Struct({ session_id: SessionId, code: PastedCode }),
  oauth_poll: Schema.Struct({ session_id: SessionId }),
  oauth_cancel: Schema.Struct({ session_id: SessionId }),
  cancel: Schema.Struct({ targetId: RequestId })
} as const

const Empty = Schema.Struct({})

/** The `data` of each operation's success answer; clients decode answers with these. */
export const OperationData = {
  get_token: SanitizedToken,
  save_token: Empty,
  remove_token: Empty,
  list_providers: Schema.Struct({ providers: Schema.Array(Schema.String) }),
  list_buckets: Schema.Struct({ buckets: Schema.Array(Schema.String) }),
  get_bucket_stats: Schema.Struct({
    bucket: Schema.String,
    requestCount: Schema.Number,
    percentage: Schema.Number
  }),
  get_api_key: Schema.Struct({ key: Schema.String }),
  has_api_key: Schema.Struct({ exists: Schema.Boolean }),
  list_api_keys: Schema.Struct({ keys: Schema.Array(Schema.String) }),
  refresh_token: SanitizedToken,
  oauth_initiate: InitiateData,
  oauth_exchange: ExchangeData,
  oauth_poll: PollData,
  oauth_cancel: Empty,
  cancel: Schema.Struct({ cancelled: Schema.Boolean })
} as const

/** Operations that exist only from a protocol version on (§20); on earlier ones they are unknown. */
export const OPERATION_SINCE: Readonly<Partial<Record<Operation, number>>> = { cancel: 2 }

export type Operation = keyof typeof OperationPayloads
export type PayloadOf<Op extends Operation> = (typeof OperationPayloads)[Op]["Type"]
export type DataOf<Op extends Operation> = (typeof OperationData)[Op]["Type"]

/** A request whose envelope and payload passed their schemas. */
export type DecodedRequest = {
  readonly [Op in Operation]: { readonly id: string; readonly op: Op; readonly payload: PayloadOf<Op> }
}[Operation]
