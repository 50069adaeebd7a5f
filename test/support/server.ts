import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as FileKeyStorage from "../../src/layers/FileKeyStorage.js"
import * as FileTokenStore from "../../src/layers/FileTokenStore.js"
import * as OAuthTokenRefresher from "../../src/layers/OAuthTokenRefresher.js"
import * as PeerVerifierNative from "../../src/layers/PeerVerifierNative.js"
import * as RecordingAuditLog from "../../src/layers/RecordingAuditLog.js"
import { withRefresh } from "../../src/server/refresh-layer.js"
import * as ServerConfig from "../../src/server/ServerConfig.js"
import type { StatusSnapshot } from "../../src/server/ServerStatus.js"
import { serve } from "../../src/server/serve.js"
import * as AccessPolicy from "../../src/services/AccessPolicy.js"
import * as CapabilityGate from "../../src/services/CapabilityGate.js"
import type { KeyStorage } from "../../src/services/KeyStorage.js"
import type { OAuthProvider } from "../../src/services/OAuthProviders.js"
import * as OAuthProviders from "../../src/services/OAuthProviders.js"
import type { PeerVerifier } from "../../src/services/PeerVerifier.js"
import * as RateLimiter from "../../src/services/RateLimiter.js"
import type { TokenRefresher } from "../../src/services/TokenRefresher.js"
import { TokenRenewal, type TokenRenewalShape } from "../../src/services/TokenRenewal.js"
import type { TokenStore } from "../../src/services/TokenStore.js"

/** A fresh private directory (0700) under the real temp dir, removed when the scope closes. */
export const tempDir = (prefix = "cp-"): Effect.Effect<string, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => fs.mkdtempSync(path.join(fs.realpathSync(os.tmpdir()), prefix))),
    (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
  )

export interface TestServerOptions {
  readonly allow?: ReadonlyArray<string>
  readonly allowKeys?: ReadonlyArray<string>
  readonly rateLimit?: number
  readonly capabilityToken?: string
  readonly config?: Partial<ServerConfig.ServerConfigShape>
  /** Replaces the file stores (for tests about logic, or stores that misbehave on command). */
  readonly stores?: Layer.Layer<TokenStore | KeyStorage>
  /** Replaces the kernel peer check (for tests of the accept path's containment). */
  readonly peers?: Layer.Layer<PeerVerifier>
  /** Configured OAuth providers (default: none). */
  readonly providers?: ReadonlyArray<OAuthProvider>
  /** Replaces the real (oauth4webapi) refresher, e.g. with one that fails on command. */
  readonly refresher?: Layer.Layer<TokenRefresher>
  /** Fixed jitter for proactive renewal (default: random 0-30 s). */
  readonly jitter?: Effect.Effect<number>
}

export interface TestServer {
  readonly socketPath: string
  readonly dataDir: string
  readonly socketDir: string
  readonly audit: RecordingAuditLog.AuditRecording
  readonly status: () => StatusSnapshot
  /** The server's proactive renewal (how many timers it holds). */
  readonly renewal: TokenRenewalShape
}

const patterns = <A>(
  specs: ReadonlyArray<string>,
  parse: (spec: string) => import("effect/Either").Either<A, string>
) =>
  specs.map((spec) => {
    const parsed = parse(spec)
    if (parsed._tag === "Left") throw new Error(parsed.left)
    return parsed.right
  })

/**
 * Starts the real server (real socket, real kernel peer check, by default the
 * real file store in a temp dir) in the caller's scope, on the caller's Clock.
 */
export const startServer = (options: TestServerOptions = {}): Effect.Effect<TestServer, never, Scope.Scope> =>
  Effect.gen(function* () {
    const root = yield* tempDir()
    const dataDir = path.join(root, "data")
    const socketDir = path.join(root, "sock")
    const audit = RecordingAuditLog.makeRecording()
    const stores = options.stores ?? Layer.merge(FileTokenStore.layer(dataDir), FileKeyStorage.layer(dataDir))
    const layer = Layer.mergeAll(
      withRefresh(
        Layer.mergeAll(
          stores,
          OAuthProviders.layer(options.providers ?? []),
          options.refresher ?? OAuthTokenRefresher.layer
        ),
        { callTimeoutMs: options.config?.storeCallTimeoutMs, jitter: options.jitter }
      ),
      AccessPolicy.layer(
        patterns(options.allow ?? [], AccessPolicy.parseTokenPattern),
        patterns(options.allowKeys ?? [], AccessPolicy.parseKeyPattern)
      ),
      RateLimiter.layer(options.rateLimit ?? 0),
      CapabilityGate.layer(options.capabilityToken),
      ServerConfig.layer({ socketDir, ...options.config }),
      options.peers ?? PeerVerifierNative.layer({ allowUids: [] })
    ).pipe(Layer.provideMerge(RecordingAuditLog.layer(audit)))
    const context = yield* Layer.build(layer).pipe(Effect.orDie)
    const { socketPath, status } = yield* serve.pipe(Effect.provide(context), Effect.orDie)
    const renewal = Context.get(context, TokenRenewal)
    return { socketPath, dataDir, socketDir, audit, status, renewal }
  })
