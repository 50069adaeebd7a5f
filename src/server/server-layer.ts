import * as path from "node:path"
import type * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import { sessionLifetimeFromEnv } from "../config/login-session-timeout.js"
import type { StoreKind } from "../config/store-kind.js"
import { UsageError } from "../errors/usage.js"
import * as AccessPolicyLive from "../layers/AccessPolicyLive.js"
import * as AuditTailLive from "../layers/AuditTailLive.js"
import * as CapabilityGateLive from "../layers/CapabilityGateLive.js"
import * as ConfirmationsLive from "../layers/ConfirmationsLive.js"
import * as DesktopNotifier from "../layers/DesktopNotifier.js"
import * as EffectAuditLog from "../layers/EffectAuditLog.js"
import * as LoginSessionsLive from "../layers/LoginSessionsLive.js"
import * as OAuthLoginClient from "../layers/OAuthLoginClient.js"
import * as OAuthTokenRefresher from "../layers/OAuthTokenRefresher.js"
import * as PeerVerifierNative from "../layers/PeerVerifierNative.js"
import * as ProvidersFile from "../layers/ProvidersFile.js"
import * as RateLimiterLive from "../layers/RateLimiterLive.js"
import * as RefreshCoordinatorLive from "../layers/RefreshCoordinatorLive.js"
import * as StoreDeadline from "../layers/StoreDeadline.js"
import { type StoreOpenError, storeLayers } from "../layers/StoreLayers.js"
import * as TokenQuotaLive from "../layers/TokenQuotaLive.js"
import * as TokenRenewalLive from "../layers/TokenRenewalLive.js"
import * as AccessPolicy from "../services/AccessPolicy.js"
import type { AuditLog } from "../services/AuditLog.js"
import type { KeyStorage } from "../services/KeyStorage.js"
import type { LoginClient } from "../services/LoginClient.js"
import type { Notifier } from "../services/Notifier.js"
import type { OAuthProviders } from "../services/OAuthProviders.js"
import type { PeerVerifier } from "../services/PeerVerifier.js"
import type { TokenRefresher } from "../services/TokenRefresher.js"
import type { TokenStore } from "../services/TokenStore.js"
import * as ServerConfig from "./ServerConfig.js"
import type { ServerServices } from "./serve.js"

/** What `credproxy serve` and the embedding API accept (PROTOCOL.md §13, §15). */
export interface ServeOptions {
  readonly dataDir: string
  /** Where credentials are kept (docs/PROTOCOL.md §21): the data directory's files (default) or the OS keyring. */
  readonly store?: StoreKind | undefined
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
  /** Every connection restricted (§19): it may only read what it names. */
  readonly restrict?: boolean | undefined
  /** Confirm on first use: each credential's first use by each sandbox identity waits for the user. */
  readonly confirm?: boolean | undefined
}

/**
 * The parts of a server that differ between the `credproxy` binary, a host
 * program that embeds it and the tests; each defaults to the binary's.
 */
export interface ServerParts {
  /** The token store and key storage; default the `store` of the options (the file stores in `dataDir`). */
  readonly stores?: Layer.Layer<TokenStore | KeyStorage, StoreOpenError | UsageError> | undefined
  /** The OAuth providers; default the providers file. */
  readonly providers?: Layer.Layer<OAuthProviders, UsageError> | undefined
  /** What calls a token endpoint; default oauth4webapi over fetch. */
  readonly refresher?: Layer.Layer<TokenRefresher> | undefined
  /** What talks to a provider during a login; default oauth4webapi over fetch. */
  readonly loginClient?: Layer.Layer<LoginClient> | undefined
  /** Who may connect; default the kernel's peer credentials. */
  readonly peers?: Layer.Layer<PeerVerifier, never, AuditLog> | undefined
  /** Where the audit log goes; default the Effect logger. */
  readonly audit?: Layer.Layer<AuditLog> | undefined
  /** Tuning beyond the options (timeouts, limits). */
  readonly config?: Partial<ServerConfig.ServerConfigShape> | undefined
  /** The jitter of proactive renewal; default uniform 0-30 s. */
  readonly renewalJitter?: Effect.Effect<number> | undefined
  /** How the user is told a use waits for confirmation; default desktop notifications where available. */
  readonly notifier?: Layer.Layer<Notifier> | undefined
}

const collect = <A>(
  specs: ReadonlyArray<string>,
  parse: (spec: string) => Either.Either<A, string>,
  option: string
): Either.Either<Array<A>, UsageError> =>
  Either.mapLeft(
    Either.all(specs.map(parse)),
    (problem) => new UsageError({ reason: "InvalidPattern", subject: option, detail: problem })
  )

const nonNegativeInteger = (value: number, option: string): Either.Either<number, UsageError> =>
  Number.isInteger(value) && value >= 0
    ? Either.right(value)
    : Either.left(new UsageError({ reason: "InvalidNumber", subject: option, detail: String(value) }))

/**
 * Every Layer the server needs, composed in one place for the binary, the
 * library and the tests: the stores under one deadline (`StoreDeadline`),
 * refresh and proactive renewal on top of them, the access policy, the rate
 * limiter, the capability gate, the peer check and the audit log. Fails with
 * a `UsageError` for a bad option.
 */
export const serverLayer = (options: ServeOptions, parts: ServerParts = {}) =>
  Either.gen(function* () {
    const tokenPatterns = yield* collect(options.allow ?? [], AccessPolicy.parseTokenPattern, "--allow")
    const keyPatterns = yield* collect(options.allowKeys ?? [], AccessPolicy.parseKeyPattern, "--allow-key")
    const rateLimit = yield* nonNegativeInteger(
      options.rateLimit ?? ServerConfig.DEFAULT_RATE_LIMIT,
      "--rate-limit"
    )
    const maxConnections = yield* nonNegativeInteger(
      options.maxConnections ?? ServerConfig.defaults.maxConnections,
      "--max-connections"
    )
    const allowUids = yield* Either.all(
      (options.allowUids ?? []).map((uid) => nonNegativeInteger(uid, "--allow-uid"))
    )
    if (options.capabilityToken !== undefined && options.capabilityToken === "") {
      return yield* Either.left(
        new UsageError({ reason: "EmptyCapabilityToken", subject: "capability token" })
      )
    }
    const lifetimeFromEnv = yield* sessionLifetimeFromEnv()
    const config: ServerConfig.ServerConfigShape = {
      ...ServerConfig.defaults,
      maxConnections,
      restrict: options.restrict ?? false,
      adminSocketDir: path.join(options.dataDir, "run"),
      ...(options.socketDir === undefined ? {} : { socketDir: options.socketDir }),
      ...(lifetimeFromEnv === undefined ? {} : { loginSessionLifetimeMs: lifetimeFromEnv }),
      ...parts.config
    }
    const stores = StoreDeadline.layer(config.storeCallTimeoutMs).pipe(
      Layer.provide(parts.stores ?? storeLayers(options.store ?? "file", options.dataDir).both)
    )
    const logins = LoginSessionsLive.layer({
      lifetimeMs: config.loginSessionLifetimeMs,
      maxPerIdentity: config.maxLoginSessionsPerIdentity,
      maxSessions: config.maxLoginSessions,
      providerTimeoutMs: config.providerCallTimeoutMs
    }).pipe(Layer.provide(parts.loginClient ?? OAuthLoginClient.layer))
    const refresh = Layer.merge(TokenRenewalLive.layer({ jitter: parts.renewalJitter }), logins).pipe(
      Layer.provideMerge(RefreshCoordinatorLive.layer({ providerTimeoutMs: config.providerCallTimeoutMs })),
      Layer.provideMerge(
        Layer.mergeAll(
          stores,
          parts.providers ?? ProvidersFile.layer({ dataDir: options.dataDir, file: options.providers }),
          parts.refresher ?? OAuthTokenRefresher.layer,
          TokenQuotaLive.layer(config.maxNewTokens)
        )
      )
    )
    const layer: Layer.Layer<ServerServices, StoreOpenError | UsageError> = Layer.mergeAll(
      CapabilityGateLive.layer(options.capabilityToken),
      refresh,
      AccessPolicyLive.layer(tokenPatterns, keyPatterns),
      RateLimiterLive.layer(rateLimit),
      Layer.succeed(ServerConfig.ServerConfig, config),
      parts.peers ?? PeerVerifierNative.layer({ allowUids }),
      ConfirmationsLive.layer(options.confirm ?? false).pipe(
        Layer.provide(parts.notifier ?? DesktopNotifier.layer)
      )
    ).pipe(Layer.provideMerge(AuditTailLive.layer), Layer.provideMerge(parts.audit ?? EffectAuditLog.layer))
    return layer
  })

/** The refresh coordinator on the `store` of `dataDir`, for host commands that refresh without a server. */
export const refreshLayer = (dataDir: string, providersFile: string | undefined, store: StoreKind) =>
  RefreshCoordinatorLive.layer().pipe(
    Layer.provide(
      Layer.mergeAll(
        StoreDeadline.tokens(ServerConfig.defaults.storeCallTimeoutMs).pipe(
          Layer.provide(storeLayers(store, dataDir).tokens)
        ),
        ProvidersFile.layer({ dataDir, file: providersFile }),
        OAuthTokenRefresher.layer
      )
    )
  )

/**
 * The login sessions on the `store` of `dataDir`, for `credproxy login` (no
 * server): the same sessions and flows as the `oauth_*` operations, the
 * host's own identity, no limit on new tokens.
 */
export const loginLayer = (dataDir: string, providersFile: string | undefined, store: StoreKind) =>
  Either.map(sessionLifetimeFromEnv(), (lifetime) =>
    LoginSessionsLive.layer({
      lifetimeMs: lifetime ?? ServerConfig.defaults.loginSessionLifetimeMs,
      maxPerIdentity: ServerConfig.defaults.maxLoginSessionsPerIdentity,
      maxSessions: ServerConfig.defaults.maxLoginSessions,
      providerTimeoutMs: ServerConfig.defaults.providerCallTimeoutMs
    }).pipe(
      Layer.provide(
        Layer.mergeAll(
          StoreDeadline.tokens(ServerConfig.defaults.storeCallTimeoutMs).pipe(
            Layer.provide(storeLayers(store, dataDir).tokens)
          ),
          ProvidersFile.layer({ dataDir, file: providersFile }),
          OAuthLoginClient.layer,
          TokenQuotaLive.unlimited,
          EffectAuditLog.layer
        )
      )
    )
  )
