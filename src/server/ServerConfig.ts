import * as Context from "effect/Context"
import * as Layer from "effect/Layer"
import { MAX_SESSIONS, MAX_SESSIONS_PER_IDENTITY, SESSION_LIFETIME_MS } from "../services/LoginSessions.js"

/**
 * How the server spends its resources: limits and timers of PROTOCOL.md §10
 * and §14, and the bounds this server sets where the protocol is silent (see
 * docs/PROTOCOL.md, "Decisions"). The stores and the policy have their own.
 */
export interface ServerConfigShape {
  /** Directory for the socket; default `realpath(os.tmpdir())/llxprt-cred-{uid}`. */
  readonly socketDir?: string
  /** Connections served at once; one more is closed at once without a frame. */
  readonly maxConnections: number
  /** Requests of one connection running at once; past it the connection's reads pause. */
  readonly maxInFlightPerConnection: number
  /** Frames handled from one connection before other connections get a turn. */
  readonly maxFramesPerRead: number
  /** Bytes received but not yet handled that one connection may hold; past it the connection is closed. */
  readonly maxBufferedBytes: number
  /** Bytes of answers not yet taken by the peer that one connection may hold; reads pause before it is reached (§22). */
  readonly maxHeldAnswerBytes: number
  readonly handshakeTimeoutMs: number
  /** A frame started but not complete within this long closes the connection. */
  readonly partialFrameTimeoutMs: number
  /** The deadline of one store call (the `StoreDeadline` decorator). */
  readonly storeCallTimeoutMs: number
  /** The deadline of one call to a provider's endpoint. */
  readonly providerCallTimeoutMs: number
  /** How long requests in flight may finish when the server stops. */
  readonly shutdownDrainMs: number
  /** Tokens (provider:bucket keys) `save_token` may create in one run; updates do not count (§22). */
  readonly maxNewTokens: number
  /** Every connection is restricted (§19): it may only read what it names. */
  readonly restrict: boolean
  /** Where the host-only admin socket goes (`{dataDir}/run`); none when unset. */
  readonly adminSocketDir?: string
  /** How long a login session lives (§17; `LLXPRT_OAUTH_SESSION_TIMEOUT_SECONDS` overrides it). */
  readonly loginSessionLifetimeMs: number
  /** Live login sessions one identity may hold. */
  readonly maxLoginSessionsPerIdentity: number
  /** Login sessions the server holds for all identities (live, finished or expired, until collected). */
  readonly maxLoginSessions: number
}

export class ServerConfig extends Context.Tag("credproxy/ServerConfig")<ServerConfig, ServerConfigShape>() {}

export const defaults: ServerConfigShape = {
  maxConnections: 64,
  // 16 × the 64 KiB an answer may take = maxHeldAnswerBytes: the two limits bite together.
  maxInFlightPerConnection: 16,
  maxFramesPerRead: 128,
  // Reads pause under backpressure, so an honest client never gets near this; it bounds what a hostile one can pin.
  maxBufferedBytes: 1024 * 1024,
  maxHeldAnswerBytes: 1024 * 1024,
  handshakeTimeoutMs: 5_000,
  partialFrameTimeoutMs: 5_000,
  storeCallTimeoutMs: 15_000,
  providerCallTimeoutMs: 15_000,
  shutdownDrainMs: 5_000,
  maxNewTokens: 256,
  restrict: false,
  loginSessionLifetimeMs: SESSION_LIFETIME_MS,
  maxLoginSessionsPerIdentity: MAX_SESSIONS_PER_IDENTITY,
  maxLoginSessions: MAX_SESSIONS
}

/** Requests per second per connection when `--rate-limit` is not given (§10). */
export const DEFAULT_RATE_LIMIT = 60

export const layer = (overrides: Partial<ServerConfigShape> = {}) =>
  Layer.succeed(ServerConfig, { ...defaults, ...overrides })
