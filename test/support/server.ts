import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as DesktopNotifier from "../../src/layers/DesktopNotifier.js"
import * as FileKeyStorage from "../../src/layers/FileKeyStorage.js"
import * as FileTokenStore from "../../src/layers/FileTokenStore.js"
import * as ProvidersFile from "../../src/layers/ProvidersFile.js"
import type { ServerConfigShape } from "../../src/server/ServerConfig.js"
import type { StatusSnapshot } from "../../src/server/ServerStatus.js"
import { serve } from "../../src/server/serve.js"
import { serverLayer } from "../../src/server/server-layer.js"
import { KeyStorage } from "../../src/services/KeyStorage.js"
import type { Notifier } from "../../src/services/Notifier.js"
import type { OAuthProvider } from "../../src/services/OAuthProviders.js"
import type { PeerVerifier } from "../../src/services/PeerVerifier.js"
import type { TokenRefresher } from "../../src/services/TokenRefresher.js"
import { TokenRenewal, type TokenRenewalShape } from "../../src/services/TokenRenewal.js"
import { TokenStore, type TokenStoreShape } from "../../src/services/TokenStore.js"
import * as RecordingAuditLog from "./recording-audit-log.js"

/** A fresh private directory (0700) under the real temp dir, removed when the scope closes. */
export const tempDir = (prefix = "cp-"): Effect.Effect<string, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => fs.mkdtempSync(path.join(fs.realpathSync(os.tmpdir()), prefix))),
    (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
  )

export interface TestServerOptions {
  readonly allow?: ReadonlyArray<string>
  readonly allowKeys?: ReadonlyArray<string>
  /** Requests per second per connection; the binary's default (60) unless given. */
  readonly rateLimit?: number
  readonly capabilityToken?: string
  /** Every connection restricted (§19). */
  readonly restrict?: boolean
  /** Confirm on first use (`serve --confirm`). */
  readonly confirm?: boolean
  /** Replaces the desktop notifier (default: none, so tests never spawn one). */
  readonly notifier?: Layer.Layer<Notifier>
  readonly config?: Partial<ServerConfigShape>
  /** Replaces the file stores (for tests about logic, or stores that misbehave on command). */
  readonly stores?: Layer.Layer<TokenStore | KeyStorage>
  /** Replaces the kernel peer check (for tests of the accept path's containment). */
  readonly peers?: Layer.Layer<PeerVerifier>
  /** Configured OAuth providers (default: the providers file of the data dir, which is missing: none). */
  readonly providers?: ReadonlyArray<OAuthProvider>
  /** Replaces the real (oauth4webapi) refresher, e.g. with one that fails on command. */
  readonly refresher?: Layer.Layer<TokenRefresher>
  /** Fixed jitter for proactive renewal (default: random 0-30 s). */
  readonly jitter?: Effect.Effect<number>
}

/** How many callers wait for a token lock, and how many hold one: negative checks wait on these. */
export interface LockCounts {
  waiting: number
  held: number
}

/** Counts the token store's lock waits and holds, without changing what the lock does. */
const observeLocks =
  (counts: LockCounts) =>
  (store: TokenStoreShape): TokenStoreShape => ({
    ...store,
    lock: (key) =>
      Effect.uninterruptibleMask((restore) =>
        Effect.gen(function* () {
          counts.waiting++
          yield* restore(store.lock(key)).pipe(
            Effect.ensuring(
              Effect.sync(() => {
                counts.waiting--
              })
            )
          )
          counts.held++
          yield* Effect.addFinalizer(() =>
            Effect.sync(() => {
              counts.held--
            })
          )
        })
      )
  })

export interface TestServer {
  readonly socketPath: string
  /** The host-only admin socket (`{dataDir}/run/admin-{pid}.sock`). */
  readonly adminSocketPath: string
  readonly dataDir: string
  readonly socketDir: string
  readonly audit: RecordingAuditLog.AuditRecording
  readonly status: () => StatusSnapshot
  /** The server's proactive renewal (how many timers it holds). */
  readonly renewal: TokenRenewalShape
  /** The token store's locks, waited for and held. */
  readonly locks: LockCounts
}

/**
 * Starts the real server with the production composition (`serverLayer`:
 * real socket, real kernel peer check, by default the real file store in a
 * temp dir), in the caller's scope and on the caller's Clock. The audit log
 * is swapped for one that records, and the token store's locks are counted.
 */
export const startServer = (options: TestServerOptions = {}): Effect.Effect<TestServer, never, Scope.Scope> =>
  Effect.gen(function* () {
    const root = yield* tempDir()
    const dataDir = path.join(root, "data")
    const socketDir = path.join(root, "sock")
    const audit = RecordingAuditLog.makeRecording()
    const locks: LockCounts = { waiting: 0, held: 0 }
    const base = options.stores ?? Layer.merge(FileTokenStore.layer(dataDir), FileKeyStorage.layer(dataDir))
    const stores = Layer.merge(
      Layer.effect(TokenStore, Effect.map(TokenStore, observeLocks(locks))),
      Layer.effect(KeyStorage, KeyStorage)
    ).pipe(Layer.provide(base))
    const layer = serverLayer(
      {
        dataDir,
        socketDir,
        allow: options.allow,
        allowKeys: options.allowKeys,
        rateLimit: options.rateLimit,
        capabilityToken: options.capabilityToken,
        restrict: options.restrict,
        confirm: options.confirm
      },
      {
        stores,
        providers: options.providers === undefined ? undefined : ProvidersFile.fromList(options.providers),
        refresher: options.refresher,
        peers: options.peers,
        audit: RecordingAuditLog.layer(audit),
        config: options.config,
        renewalJitter: options.jitter,
        notifier: options.notifier ?? DesktopNotifier.none
      }
    )
    if (Either.isLeft(layer)) return yield* Effect.die(layer.left)
    const context = yield* Layer.build(layer.right).pipe(Effect.orDie)
    const { socketPath, adminSocketPath, status } = yield* serve.pipe(Effect.provide(context), Effect.orDie)
    const renewal = Context.get(context, TokenRenewal)
    if (adminSocketPath === undefined)
      return yield* Effect.die(new Error("the test server has no admin socket"))
    return { socketPath, adminSocketPath, dataDir, socketDir, audit, status, renewal, locks }
  })
