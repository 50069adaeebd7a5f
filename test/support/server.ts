import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as FileKeyStorage from "../../src/layers/FileKeyStorage.js"
import * as FileTokenStore from "../../src/layers/FileTokenStore.js"
import * as PeerVerifierNative from "../../src/layers/PeerVerifierNative.js"
import * as RecordingAuditLog from "../../src/layers/RecordingAuditLog.js"
import * as ServerConfig from "../../src/server/ServerConfig.js"
import type { StatusSnapshot } from "../../src/server/ServerStatus.js"
import { serve } from "../../src/server/serve.js"
import * as AccessPolicy from "../../src/services/AccessPolicy.js"
import * as CapabilityGate from "../../src/services/CapabilityGate.js"
import type { KeyStorage } from "../../src/services/KeyStorage.js"
import * as RateLimiter from "../../src/services/RateLimiter.js"
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
}

export interface TestServer {
  readonly socketPath: string
  readonly dataDir: string
  readonly socketDir: string
  readonly audit: RecordingAuditLog.AuditRecording
  readonly status: () => StatusSnapshot
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
      stores,
      AccessPolicy.layer(
        patterns(options.allow ?? [], AccessPolicy.parseTokenPattern),
        patterns(options.allowKeys ?? [], AccessPolicy.parseKeyPattern)
      ),
      RateLimiter.layer(options.rateLimit ?? 0),
      CapabilityGate.layer(options.capabilityToken),
      ServerConfig.layer({ socketDir, ...options.config }),
      PeerVerifierNative.layer({ allowUids: [] })
    ).pipe(Layer.provideMerge(RecordingAuditLog.layer(audit)))
    const context = yield* Layer.build(layer).pipe(Effect.orDie)
    const { socketPath, status } = yield* serve.pipe(Effect.provide(context), Effect.orDie)
    return { socketPath, dataDir, socketDir, audit, status }
  })
