/**
 * Limits of the wire protocol itself (PROTOCOL.md §3, §5, §8, §20). How the
 * server spends its resources (timeouts, connection and in-flight limits) is
 * its own tuning, in `server/ServerConfig.ts`.
 */

/** The protocol versions this side speaks; the handshake settles on the highest one both speak (§4, §20). */
export const PROTOCOL_VERSIONS = { min: 1, max: 2 } as const
/** The version of a handshake frame's own `v` (clients send their highest; the payload's range decides). */
export const PROTOCOL_VERSION = PROTOCOL_VERSIONS.max
export const FRAME_HEADER_BYTES = 4
/** Largest frame payload before the handshake and on version 1. */
export const MAX_FRAME_BYTES = 65536
/** Largest frame payload on version 2 (§20). */
export const MAX_FRAME_BYTES_V2 = 4 * 1024 * 1024
/** The largest frame payload of a negotiated version. */
export const maxFrameBytes = (version: number): number =>
  version >= 2 ? MAX_FRAME_BYTES_V2 : MAX_FRAME_BYTES
export const MAX_ID_LENGTH = 128
export const MAX_NAME_LENGTH = 128
/** A token as stored (its JSON) may not be larger (§22). */
export const MAX_STORED_TOKEN_BYTES = 16 * 1024
