import * as Schema from "effect/Schema"

/** The handshake payload of PROTOCOL.md §4. `capabilityToken` is checked by the server, not here. */
export const HandshakePayload = Schema.Struct({
  minVersion: Schema.Int,
  maxVersion: Schema.Int,
  capabilityToken: Schema.optional(Schema.Unknown)
}).pipe(
  Schema.filter((p) => p.minVersion <= p.maxVersion || "minVersion must not be greater than maxVersion"),
  Schema.annotations({ identifier: "HandshakePayload" })
)
export type HandshakePayload = typeof HandshakePayload.Type

/** The handshake frame; its `v` is deliberately not checked (§14): the payload's range decides. */
export const HandshakeFrame = Schema.Struct({
  op: Schema.Literal("handshake"),
  payload: HandshakePayload
}).annotations({ identifier: "HandshakeFrame" })
export type HandshakeFrame = typeof HandshakeFrame.Type
