import * as Schema from "effect/Schema"
import type { WireError } from "../errors/wire-error.js"
import { PROTOCOL_VERSION } from "./limits.js"
import { WireCode } from "./wire-codes.js"

/**
 * Response frames (PROTOCOL.md §4, §5). The schemas describe the wire format
 * for clients and tests; the server builds the same JSON with the string
 * builders below so a cached payload (a token's sanitized JSON) is spliced in
 * without being parsed and serialized again.
 */
export const SuccessResponse = Schema.Struct({
  v: Schema.Literal(PROTOCOL_VERSION),
  id: Schema.optional(Schema.String),
  op: Schema.optional(Schema.Literal("handshake")),
  ok: Schema.Literal(true),
  data: Schema.Record({ key: Schema.String, value: Schema.Unknown })
})

export const FailureResponse = Schema.Struct({
  v: Schema.Literal(PROTOCOL_VERSION),
  id: Schema.optional(Schema.String),
  op: Schema.optional(Schema.Literal("handshake")),
  ok: Schema.Literal(false),
  code: Schema.Enums(WireCode),
  error: Schema.String,
  retryAfter: Schema.optional(Schema.Number.pipe(Schema.positive()))
})

export const Response = Schema.Union(SuccessResponse, FailureResponse)
export type Response = typeof Response.Type

/** `{"v":1,"id":..,"ok":true,"data":<dataJson>}`; `dataJson` must already be a JSON object. */
export const successJson = (id: string, dataJson: string): string =>
  `{"v":1,"id":${JSON.stringify(id)},"ok":true,"data":${dataJson}}`

/** A failure answer; without `id` when the request had no usable one. */
export const failureJson = (id: string | undefined, error: WireError): string =>
  JSON.stringify({
    v: PROTOCOL_VERSION,
    ...(id === undefined ? {} : { id }),
    ok: false,
    code: error.code,
    error: error.message,
    ...(error.retryAfter === undefined ? {} : { retryAfter: error.retryAfter })
  })

export const handshakeOkJson = (version: number): string =>
  JSON.stringify({ v: PROTOCOL_VERSION, op: "handshake", ok: true, data: { version } })

export const handshakeFailureJson = (error: WireError): string =>
  JSON.stringify({ v: PROTOCOL_VERSION, op: "handshake", ok: false, code: error.code, error: error.message })
