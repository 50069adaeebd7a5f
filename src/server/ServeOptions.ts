import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import { UsageError } from "../errors/usage.js"
import * as EffectAuditLog from "../layers/EffectAuditLog.js"
import * as FileKeyStorage from "../layers/FileKeyStorage.js"
import * as FileTokenStore from "../layers/FileTokenStore.js"
import * as OAuthTokenRefresher from "../layers/OAuthTokenRefresher.js"
import * as PeerVerifierNative from "../layers/PeerVerifierNative.js"
import * as ProvidersFile from "../layers/ProvidersFile.js"
import { DEFAULT_MAX_CONNECTIONS, DEFAULT_RATE_LIMIT } from "../protocol/limits.js"
import * as AccessPolicy from "../services/AccessPolicy.js"
import * as CapabilityGate from "../services/CapabilityGate.js"
import * as RateLimiter from "../services/RateLimiter.js"
import { withRefresh } from "./refresh-layer.js"
import * as ServerConfig from "./ServerConfig.js"

/** What `credproxy serve` and the embedding API accept (PROTOCOL.md §13, §15). */
export interface ServeOptions {
  readonly dataDir: string
  readonly socketDir?: string | undefined
  /** Token patterns `provider[:bucket]`, `*` wildcard; empty allows every token. */
  readonly allow?: ReadonlyArray<string> | undefined
  /** API key name patterns; empty allows every key. */
  readonly allowKeys?: ReadonlyArray<string> | undefined
  /** Requests per second per connection; 0 turns the limit off. */
  readonly rateLimit?: number | undefined
  readonly maxConnections?: number | undefined
  /** Uids besides our own that may connect. */
  readonly allowUids?: ReadonlyArray<number> | undefined
  /** When set, every handshake must present this secret as `capabilityToken`. */
  readonly capabilityToken?: string | undefined
  /** The providers file (§16); default `{dataDir}/providers.json`, which may be missing. */
  readonly providers?: string | undefined
}

const collect = <A>(
  specs: ReadonlyArray<string>,
  parse: (spec: string) => Either.Either<A, string>
): Either.Either<Array<A>, UsageError> =>
  Either.mapLeft(Either.all(specs.map(parse)), (reason) => new UsageError({ reason }))

const nonNegativeInteger = (value: number, what: string): Either.Either<number, UsageError> =>
  Number.isInteger(value) && value >= 0
    ? Either.right(value)
    : Either.left(new UsageError({ reason: `${what} must be a whole number of 0 or more` }))

/**
 * Every Layer the server needs, built from the options: the embedded file
 * store in `dataDir` with refresh and proactive renewal on top (providers from
 * the providers file), the access policy, the rate limiter, the kernel peer
 * check and the audit log. Fails with a `UsageError` for a bad option or a bad
 * providers file.
 */
export const serverLayer = (options: ServeOptions) =>
  Either.gen(function* () {
    const tokenPatterns = yield* collect(options.allow ?? [], AccessPolicy.parseTokenPattern)
    const keyPatterns = yield* collect(options.allowKeys ?? [], AccessPolicy.parseKeyPattern)
    const rateLimit = yield* nonNegativeInteger(options.rateLimit ?? DEFAULT_RATE_LIMIT, "--rate-limit")
    const maxConnections = yield* nonNegativeInteger(
      options.maxConnections ?? DEFAULT_MAX_CONNECTIONS,
      "--max-connections"
    )
    const allowUids = yield* Either.all(
      (options.allowUids ?? []).map((uid) => nonNegativeInteger(uid, "--allow-uid"))
    )
    if (options.capabilityToken !== undefined && options.capabilityToken === "") {
      return yield* Either.left(new UsageError({ reason: "the capability token must not be empty" }))
    }
    return Layer.mergeAll(
      CapabilityGate.layer(options.capabilityToken),
      withRefresh(
        Layer.mergeAll(
          FileTokenStore.layer(options.dataDir),
          ProvidersFile.layer({ dataDir: options.dataDir, file: options.providers }),
          OAuthTokenRefresher.layer
        )
      ),
      FileKeyStorage.layer(options.dataDir),
      AccessPolicy.layer(tokenPatterns, keyPatterns),
      RateLimiter.layer(rateLimit),
      ServerConfig.layer({
        maxConnections,
        ...(options.socketDir === undefined ? {} : { socketDir: options.socketDir })
      }),
      PeerVerifierNative.layer({ allowUids })
    ).pipe(Layer.provideMerge(EffectAuditLog.layer))
  })
