/**
 * Limits of the wire protocol itself (PROTOCOL.md §3, §5, §8). How the server
 * spends its resources (timeouts, connection and in-flight limits) is its own
 * tuning, in `server/ServerConfig.ts`.
 */
export const PROTOCOL_VERSION = 1
export const FRAME_HEADER_BYTES = 4
export const MAX_FRAME_BYTES = 65536
export const MAX_ID_LENGTH = 128
export const MAX_NAME_LENGTH = 128
/** A token as stored (its JSON) may not be larger (§22). */
export const MAX_STORED_TOKEN_BYTES = 16 * 1024
