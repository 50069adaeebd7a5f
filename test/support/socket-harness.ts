import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as FileKeyStorage from "../../src/layers/FileKeyStorage.js"
import * as FileTokenStore from "../../src/layers/FileTokenStore.js"
import * as KeyringKeyStorage from "../../src/layers/KeyringKeyStorage.js"
import * as KeyringTokenStore from "../../src/layers/KeyringTokenStore.js"
import * as KeyringClient from "../../src/layers/keyring/keyring-client.js"
import type { OAuthToken } from "../../src/protocol/token.js"
import type { KeyStorageShape } from "../../src/services/KeyStorage.js"
import type { TokenStoreShape } from "../../src/services/TokenStore.js"
import { killAllChildren, makeWorkspace, startServe } from "./cli.js"
import type { Json } from "./frame-client.js"
import { SECRET_SERVICE_MISSING, startSecretService } from "./secret-service.js"
import { startServer } from "./server.js"

/**
 * The servers the socket's operation tests run against: the server in this
 * process on the file store (`startServer`), and the real binary,
 * `credproxy serve --store keyring`, on a real Secret Service of its own
 * (a fresh one per test). Either way the test seeds and reads the store as
 * the host would, through a store of its own on the same backing store.
 */
export interface SocketHarness {
  readonly name: string
  /** Why it cannot run here, else `undefined`. */
  readonly missing: string | undefined
  readonly start: (options?: {
    readonly rateLimit?: number
  }) => Effect.Effect<RunningHarness, never, Scope.Scope>
}

export interface RunningHarness {
  readonly socketPath: string
  /** The data directory the server uses. */
  readonly dataDir: string
  readonly seedToken: (provider: string, bucket: string, value: Json) => Effect.Effect<void>
  readonly seedKey: (name: string, value: string) => Effect.Effect<void>
  /** The stored token as it is now (refresh token included), or `undefined`. */
  readonly readStored: (provider: string, bucket: string) => Effect.Effect<OAuthToken | undefined>
}

/** Seeding and reading through stores the test opens for each call, as a host command would. */
const through = (
  open: Effect.Effect<{ tokens: TokenStoreShape; keys: KeyStorageShape }, unknown, Scope.Scope>
): Omit<RunningHarness, "socketPath" | "dataDir"> => ({
  seedToken: (provider, bucket, value) =>
    Effect.scoped(
      Effect.flatMap(open, ({ tokens }) => tokens.save({ provider, bucket }, value as OAuthToken))
    ).pipe(Effect.orDie),
  seedKey: (name, value) =>
    Effect.scoped(Effect.flatMap(open, ({ keys }) => keys.set(name, value))).pipe(Effect.orDie),
  readStored: (provider, bucket) =>
    Effect.scoped(Effect.flatMap(open, ({ tokens }) => tokens.getLatest({ provider, bucket }))).pipe(
      Effect.orDie
    )
})

export const fileInProcess: SocketHarness = {
  name: "the file store, server in process",
  missing: undefined,
  start: (options = {}) =>
    Effect.map(startServer(options), (server) => ({
      socketPath: server.socketPath,
      dataDir: server.dataDir,
      ...through(
        Effect.all({ tokens: FileTokenStore.make(server.dataDir), keys: FileKeyStorage.make(server.dataDir) })
      )
    }))
}

export const keyringBinary: SocketHarness = {
  name: "the keyring store, credproxy serve --store keyring",
  missing: SECRET_SERVICE_MISSING,
  start: (options = {}) =>
    Effect.gen(function* () {
      const secrets = yield* Effect.acquireRelease(
        Effect.promise(() => startSecretService()),
        (service) => Effect.promise(() => service.stop())
      )
      // The test's own stores (the keyring helper inherits this) reach the same keyring as the server.
      process.env.DBUS_SESSION_BUS_ADDRESS = secrets.address
      const ws = yield* Effect.acquireRelease(Effect.sync(makeWorkspace), (ws) =>
        Effect.sync(() => ws.remove())
      )
      const args = ["--store", "keyring", "--data-dir", ws.dataDir, "--socket-dir", ws.socketDir]
      if (options.rateLimit !== undefined) args.push("--rate-limit", String(options.rateLimit))
      const server = yield* Effect.acquireRelease(
        Effect.promise(() => startServe(args, { env: secrets.env })),
        (server) => Effect.promise(() => server.stop().then(killAllChildren))
      )
      return {
        socketPath: server.socketPath,
        dataDir: ws.dataDir,
        ...through(
          Effect.flatMap(KeyringClient.make(), (keyring) =>
            Effect.all({
              tokens: KeyringTokenStore.make(keyring, ws.dataDir),
              keys: KeyringKeyStorage.make(keyring)
            })
          )
        )
      }
    })
}

export const SOCKET_HARNESSES: ReadonlyArray<SocketHarness> = [fileInProcess, keyringBinary]

/** A group's title, saying why it is skipped when it is. */
export const harnessTitle = (harness: SocketHarness, what: string): string =>
  harness.missing === undefined
    ? `${what}, on ${harness.name}`
    : `${what}, on ${harness.name} [SKIPPED: ${harness.missing}]`
