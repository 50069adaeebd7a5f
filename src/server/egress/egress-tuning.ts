/** The egress proxy's bounds (docs/PROTOCOL.md §23); tests may lower them. */
export interface EgressTuning {
  /** A request body over this is refused (413). */
  readonly maxBodyBytes: number
  /** A request body up to this is kept in memory, so it can be sent again after a refresh (401). */
  readonly retryBodyBytes: number
  /** Requests in flight at once; more get 429. */
  readonly maxInFlight: number
  /** Connecting to the upstream (TCP and TLS) may take this long (504). */
  readonly connectTimeoutMs: number
  /** The upstream may stay silent this long, before its headers or between body bytes (504). */
  readonly idleTimeoutMs: number
  /** Sandbox connections open at once (idle keep-alive ones count). */
  readonly maxConnections: number
}

export const EGRESS_DEFAULTS: EgressTuning = {
  maxBodyBytes: 32 * 1024 * 1024,
  retryBodyBytes: 8 * 1024 * 1024,
  maxInFlight: 64,
  connectTimeoutMs: 10_000,
  idleTimeoutMs: 5 * 60_000,
  maxConnections: 256
}
