import * as Schema from "effect/Schema"
import type { WireError } from "../errors/wire-error.js"
import { PROTOCOL_VERSIONS } from "./limits.js"
import { WireCode } from "./wire-codes.js"

/**
 * Response frames (PROTOCOL.md §4, §5). The schemas describe the wire format
 * for clients and tests; the server builds the same JSON with the string
 * builders below so a cached payload (a token's sanitized JSON) is spliced in
 * without being parsed and serialized again.
 */
/** The `v` of an answer: the negotiated version (the handshake's: the one it settled on, or 1 when refused). */
const Version = Schema.Int.pipe(Schema.between(PROTOCOL_VERSIONS.min, PROTOCOL_VERSIONS.max))

export const SuccessResponse = Schema.Struct({
  v: Version,
  id: Schema.optional(Schema.String),
  op: Schema.optional(Schema.Literal("handshake")),
  ok: Schema.Literal(true),
  data: Schema.Record({ key: Schema.String, value: Schema.Unknown })
})

export const FailureResponse = Schema.Struct({
  v: Version,
  id: Schema.optional(Schema.String),
  op: Schema.optional(Schema.Literal("handshake")),
  ok: Schema.Literal(false),
  code: Schema.Enums(WireCode),
  error: Schema.String,
  retryAfter: Schema.optional(Schema.Number.pipe(Schema.positive()))
})

export const Response = Schema.Union(SuccessResponse, FailureResponse)
export type Response = typeof Response.Type

/** `{"v":V,"id":..,"ok":true,"data":<dataJson>}`; `dataJson` must already be a JSON object. */
export const successJson = (version: number, id: string, dataJson: string): string =>
  `{"v":${version},"id":${JSON.stringify(id)},"ok":true,"data":${dataJson}}`

/** A failure answer; without `id` when the request had no usable one. */
export const failureJson = (version: number, id: string | undefined, error: WireError): string =>
  JSON.stringify({
    v: version,
    ...(id === undefined ? {} : { id }),
    ok: false,
    code: error.code,
    error: error.message,
    ...(error.retryAfter === undefined ? {} : { retryAfter: error.retryAfter })
  })

/** The handshake's answer carries the version it settled on, as `v` and as `data.version`. */
export const handshakeOkJson = (version: number): string =>
  JSON.stringify({ v: version, op: "handshake", ok: true, data: { version } })

/** A refused handshake settled on no version: its `v` is 1, which every client reads. */
export const handshakeFailureJson = (error: WireError): string =>
  JSON.stringify({
    v: PROTOCOL_VERSIONS.min,
    op: "handshake",
    ok: false,
    code: error.code,
    error: error.message
  })
