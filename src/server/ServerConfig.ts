import * as Context from "effect/Context"
import * as Layer from "effect/Layer"
import {
  DEFAULT_MAX_BUFFERED_BYTES,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_MAX_FRAMES_PER_READ,
  DEFAULT_MAX_IN_FLIGHT,
  HANDSHAKE_TIMEOUT_MS,
  MAX_FRAME_BYTES,
  PARTIAL_FRAME_TIMEOUT_MS,
  SHUTDOWN_DRAIN_MS,
  STORE_CALL_TIMEOUT_MS
} from "../protocol/limits.js"

/** Everything the server itself (not its stores or policy) is configured with. */
export interface ServerConfigShape {
  /** Directory for the socket; default `realpath(os.tmpdir())/llxprt-cred-{uid}`. */
  readonly socketDir?: string
  readonly maxConnections: number
  readonly maxInFlightPerConnection: number
  readonly maxFrameBytes: number
  /** Frames handled from one connection before other connections get a turn. */
  readonly maxFramesPerRead: number
  /** Bytes received but not yet handled that one connection may hold; past it the connection is closed. */
  readonly maxBufferedBytes: number
  readonly handshakeTimeoutMs: number
  readonly partialFrameTimeoutMs: number
  readonly storeCallTimeoutMs: number
  readonly shutdownDrainMs: number
}

export class ServerConfig extends Context.Tag("credproxy/ServerConfig")<ServerConfig, ServerConfigShape>() {}

export const defaults: ServerConfigShape = {
  maxConnections: DEFAULT_MAX_CONNECTIONS,
  maxInFlightPerConnection: DEFAULT_MAX_IN_FLIGHT,
  maxFrameBytes: MAX_FRAME_BYTES,
  maxFramesPerRead: DEFAULT_MAX_FRAMES_PER_READ,
  maxBufferedBytes: DEFAULT_MAX_BUFFERED_BYTES,
  handshakeTimeoutMs: HANDSHAKE_TIMEOUT_MS,
  partialFrameTimeoutMs: PARTIAL_FRAME_TIMEOUT_MS,
  storeCallTimeoutMs: STORE_CALL_TIMEOUT_MS,
  shutdownDrainMs: SHUTDOWN_DRAIN_MS
}

export const layer = (overrides: Partial<ServerConfigShape> = {}) =>
  Layer.succeed(ServerConfig, { ...defaults, ...overrides })
