import { createHash } from "node:crypto"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as FileKeyStorage from "../../src/layers/FileKeyStorage.js"
import * as FileTokenStore from "../../src/layers/FileTokenStore.js"
import * as KeyringKeyStorage from "../../src/layers/KeyringKeyStorage.js"
import * as KeyringTokenStore from "../../src/layers/KeyringTokenStore.js"
import * as KeyringClient from "../../src/layers/keyring/keyring-client.js"
import { keyAccount, tokenAccount } from "../../src/layers/keyring/keyring-entries.js"
import { encodeName } from "../../src/lib/name-encoding.js"
import type { KeyStorageShape } from "../../src/services/KeyStorage.js"
import type { TokenKey, TokenStoreShape } from "../../src/services/TokenStore.js"
import { SECRET_SERVICE_MISSING, type SecretService, startSecretService } from "./secret-service.js"

/**
 * The stores the store conformance tests run against, each with what a test
 * needs to act as "another program" on its backing store: the file store in
 * a temp data directory, and the keyring store on a real Secret Service
 * (`secret-service.ts`), each test under a keyring service name of its own.
 */
export interface StoreBackend {
  readonly name: "file" | "keyring"
  /** Why it cannot run here (the keyring without a Secret Service), else `undefined`. */
  readonly missing: string | undefined
  /** Called once before the backend's tests (starts the Secret Service) and after them. */
  readonly setUp: () => Promise<void>
  readonly tearDown: () => Promise<void>
  /** A fresh place for one test's stores: every `open` of the same place sees the same credentials. */
  readonly place: (dataDir: string) => Effect.Effect<StorePlace, unknown, Scope.Scope>
}

export interface StorePlace {
  /** The stores, as a new process would open them. */
  readonly open: Effect.Effect<{ tokens: TokenStoreShape; keys: KeyStorageShape }, unknown, Scope.Scope>
  /** The value stored for a token, as its bytes in the backing store, or `undefined`. */
  readonly readToken: (key: TokenKey) => Effect.Effect<string | undefined, unknown>
  /** Writes a token's stored value (any text) behind the stores' back, as another program would. */
  readonly writeToken: (key: TokenKey, text: string) => Effect.Effect<void, unknown>
  readonly removeToken: (key: TokenKey) => Effect.Effect<void, unknown>
  /** Writes a key behind the stores' back (its stored form), or removes it. */
  readonly writeKey: (name: string, value: string) => Effect.Effect<void, unknown>
  readonly removeKey: (name: string) => Effect.Effect<void, unknown>
  /** The path another process's `proper-lockfile` locks to hold `key`'s lock. */
  readonly lockTarget: (key: TokenKey) => string
}

const tokenFile = (dataDir: string, key: TokenKey) =>
  path.join(dataDir, "tokens", encodeName(key.provider), `${encodeName(key.bucket)}.json`)
const keyFile = (dataDir: string, name: string) => path.join(dataDir, "keys", `${encodeName(name)}.key`)

export const fileBackend: StoreBackend = {
  name: "file",
  missing: undefined,
  setUp: async () => {},
  tearDown: async () => {},
  place: (dataDir) =>
    Effect.succeed({
      open: Effect.all({ tokens: FileTokenStore.make(dataDir), keys: FileKeyStorage.make(dataDir) }),
      readToken: (key) =>
        Effect.promise(() => fs.readFile(tokenFile(dataDir, key), "utf8").catch(() => undefined)),
      writeToken: (key, text) =>
        Effect.promise(async () => {
          await fs.mkdir(path.dirname(tokenFile(dataDir, key)), { recursive: true })
          // Replaced by rename, as another credproxy writes: a new inode, so even a same-size change shows.
          const temp = `${tokenFile(dataDir, key)}.${process.pid}.external`
          await fs.writeFile(temp, text)
          await fs.rename(temp, tokenFile(dataDir, key))
        }),
      removeToken: (key) => Effect.promise(() => fs.rm(tokenFile(dataDir, key), { force: true })),
      writeKey: (name, value) =>
        Effect.promise(async () => {
          await fs.mkdir(path.join(dataDir, "keys"), { recursive: true })
          await fs.writeFile(keyFile(dataDir, name), value)
        }),
      removeKey: (name) => Effect.promise(() => fs.rm(keyFile(dataDir, name), { force: true })),
      lockTarget: (key) => tokenFile(dataDir, key)
    })
}

let secretService: SecretService | undefined
let services = 0

export const keyringBackend: StoreBackend = {
  name: "keyring",
  missing: SECRET_SERVICE_MISSING,
  setUp: async () => {
    secretService = await startSecretService({ inMemory: true })
    // The keyring helper inherits this process's environment.
    process.env.DBUS_SESSION_BUS_ADDRESS = secretService.address
  },
  tearDown: async () => {
    await secretService?.stop()
    secretService = undefined
  },
  place: (dataDir) =>
    Effect.gen(function* () {
      // A service name of its own per place: tests on one Secret Service never see each other's entries.
      const options = { service: `credproxy-test-${process.pid}-${++services}` }
      const raw = yield* KeyringClient.make(options)
      return {
        open: Effect.flatMap(KeyringClient.make(options), (keyring) =>
          Effect.all({
            tokens: KeyringTokenStore.make(keyring, dataDir),
            keys: KeyringKeyStorage.make(keyring)
          })
        ),
        readToken: (key: TokenKey) => raw.get(tokenAccount(key), "get"),
        writeToken: (key: TokenKey, text: string) => raw.set(tokenAccount(key), text, "save"),
        removeToken: (key: TokenKey) => raw.remove(tokenAccount(key), "remove"),
        writeKey: (name: string, value: string) => raw.set(keyAccount(name), JSON.stringify(value), "set"),
        removeKey: (name: string) => raw.remove(keyAccount(name), "remove"),
        lockTarget: (key: TokenKey) =>
          path.join(dataDir, "keyring-locks", createHash("sha256").update(tokenAccount(key)).digest("hex"))
      }
    })
}

export const BACKENDS: ReadonlyArray<StoreBackend> = [fileBackend, keyringBackend]
