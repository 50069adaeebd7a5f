/** Defaults of PROTOCOL.md §10, in one place so the server, CLI and tests agree. */
export const PROTOCOL_VERSION = 1
export const MAX_FRAME_BYTES = 65536
export const FRAME_HEADER_BYTES = 4
export const PARTIAL_FRAME_TIMEOUT_MS = 5_000
export const HANDSHAKE_TIMEOUT_MS = 5_000
export const STORE_CALL_TIMEOUT_MS = 15_000
export const SHUTDOWN_DRAIN_MS = 5_000
export const DEFAULT_RATE_LIMIT = 60
export const DEFAULT_MAX_CONNECTIONS = 64
/** Requests handled concurrently on one connection before reads are paused (backpressure). */
export const DEFAULT_MAX_IN_FLIGHT = 64
/** Frames handled from one connection's reads before yielding to other connections. */
export const DEFAULT_MAX_FRAMES_PER_READ = 128
/**
 * Unhandled bytes one connection may hold. Reads pause under backpressure, so
 * an honest client never gets near this; it bounds what a hostile one can pin.
 */
export const DEFAULT_MAX_BUFFERED_BYTES = 1024 * 1024
export const MAX_ID_LENGTH = 128
export const MAX_NAME_LENGTH = 128
/** How often a file store re-checks a cached entry against the disk (well inside the 1 s visibility rule). */
export const STORE_REVALIDATE_MS = 500
