import * as Schema from "effect/Schema"
import { PROTOCOL_VERSION } from "./limits.js"
import { Name } from "./names.js"
import { OAuthToken } from "./token.js"

/**
 * Payload schemas of every operation in PROTOCOL.md §6. Unknown fields are
 * ignored (dropped by decoding); `bucket` is optional but never null.
 */
const TokenAddress = { provider: Name, bucket: Schema.optionalWith(Name, { exact: true }) }

export const GetTokenPayload = Schema.Struct(TokenAddress)
export const SaveTokenPayload = Schema.Struct({ ...TokenAddress, token: OAuthToken })
export const RemoveTokenPayload = Schema.Struct(TokenAddress)
export const ListProvidersPayload = Schema.Struct({})
export const ListBucketsPayload = Schema.Struct({ provider: Name })
export const GetBucketStatsPayload = Schema.Struct(TokenAddress)
export const GetApiKeyPayload = Schema.Struct({ name: Name })
export const HasApiKeyPayload = Schema.Struct({ name: Name })
export const ListApiKeysPayload = Schema.Struct({})

export const RefreshTokenPayload = Schema.Struct(TokenAddress)
export const OAuthInitiatePayload = Schema.Struct(TokenAddress)
export const OAuthExchangePayload = Schema.Struct({ session_id: Schema.String, code: Schema.String })
export const OAuthPollPayload = Schema.Struct({ session_id: Schema.String })
export const OAuthCancelPayload = Schema.Struct({ session_id: Schema.String })

/** Every operation name of the protocol, with its payload schema. */
export const OperationPayloads = {
  get_token: GetTokenPayload,
  save_token: SaveTokenPayload,
  remove_token: RemoveTokenPayload,
  list_providers: ListProvidersPayload,
  list_buckets: ListBucketsPayload,
  get_bucket_stats: GetBucketStatsPayload,
  get_api_key: GetApiKeyPayload,
  has_api_key: HasApiKeyPayload,
  list_api_keys: ListApiKeysPayload,
  refresh_token: RefreshTokenPayload,
  oauth_initiate: OAuthInitiatePayload,
  oauth_exchange: OAuthExchangePayload,
  oauth_poll: OAuthPollPayload,
  oauth_cancel: OAuthCancelPayload
} as const

export type Operation = keyof typeof OperationPayloads
export type PayloadOf<Op extends Operation> = (typeof OperationPayloads)[Op]["Type"]

export const isOperation = (op: unknown): op is Operation =>
  typeof op === "string" && Object.hasOwn(OperationPayloads, op)

/**
 * The whole request frame of one operation (PROTOCOL.md §5): envelope and
 * payload in one schema, so each frame is decoded once. The server reads `id`
 * itself first (an unusable id is answered without one) and puts `{}` in
 * place of an omitted payload.
 */
export const requestSchema = <Op extends Operation>(op: Op) =>
  Schema.Struct({
    v: Schema.Literal(PROTOCOL_VERSION),
    id: Schema.String,
    op: Schema.Literal(op),
    payload: OperationPayloads[op] as Schema.Schema<PayloadOf<Op>, unknown>
  })
