import * as Schema from "effect/Schema"
import { MAX_ID_LENGTH, PROTOCOL_VERSION } from "./limits.js"

/**
 * The request envelope of PROTOCOL.md §5. The server reads `id` first on its
 * own (an unusable id means an answer without id), then checks the rest.
 */
export const RequestId = Schema.String.pipe(
  Schema.minLength(1),
  Schema.maxLength(MAX_ID_LENGTH),
  Schema.annotations({ identifier: "RequestId" })
)

export const isUsableId = (id: unknown): id is string =>
  typeof id === "string" && id.length > 0 && id.length <= MAX_ID_LENGTH

export const RequestEnvelope = Schema.Struct({
  v: Schema.Literal(PROTOCOL_VERSION),
  id: RequestId,
  op: Schema.String,
  payload: Schema.optional(Schema.Unknown)
}).annotations({ identifier: "RequestEnvelope" })
export type RequestEnvelope = typeof RequestEnvelope.Type
