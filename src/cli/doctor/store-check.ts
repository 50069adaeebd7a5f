import * as fs from "node:fs"
import * as path from "node:path"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import { load } from "../../config/providers-file.js"
import type { StoreKind } from "../../config/store-kind.js"
import type { StoreFailure, StoreTimeout } from "../../errors/errors.js"
import type { KeyringUnavailable } from "../../errors/startup.js"
import { checkDataDir } from "../../layers/file-store/data-dir-check.js"
import { storeLayers } from "../../layers/StoreLayers.js"
import { KeyStorage } from "../../services/KeyStorage.js"
import { TokenStore } from "../../services/TokenStore.js"
import { type Check, type Finding, fail, ok, skip } from "./check.js"

/** At most this many tokens and keys are read (each read is bounded by the store itself). */
const MAX_READ = 256

const NAME = "store"

const failed = (what: string, error: StoreFailure | StoreTimeout): Finding =>
  error._tag === "StoreFailure"
    ? fail(NAME, `${what}: ${error.explained.what}`, error.explained.fix)
    : fail(NAME, `${what}: ${error.message}`, "retry, and check the disk that holds the data directory")

const keyringFailed = (check: string, error: KeyringUnavailable): Finding =>
  fail(check, error.explained.what, error.explained.fix)

/** Reads every stored token (up to MAX_READ); the first that cannot be read is the finding. */
const readTokens = Effect.gen(function* () {
  const store = yield* TokenStore
  let count = 0
  for (const provider of yield* store.listProviders()) {
    for (const bucket of yield* store.listBuckets(provider)) {
      if (count >= MAX_READ) return count
      const read = yield* Effect.either(store.getLatest({ provider, bucket }))
      if (read._tag === "Left") return failed(`token ${provider}:${bucket}`, read.left)
      count++
    }
  }
  return count
})

const readKeys = Effect.gen(function* () {
  const keys = yield* KeyStorage
  const names = (yield* keys.list()).slice(0, MAX_READ)
  for (const name of names) {
    const read = yield* Effect.either(keys.get(name))
    if (read._tag === "Left") return failed(`API key ${name}`, read.left)
  }
  return names.length
})

const counted = (tokens: number, keys: number) =>
  `${tokens} token${tokens === 1 ? "" : "s"} and ${keys} API key${keys === 1 ? "" : "s"}, all readable`

/**
 * The keyring store: opening it is the check that the keyring answers and is
 * unlocked (it writes, reads and removes one probe entry, §21), then every
 * entry is read as with the files.
 */
const readKeyring = (dataDir: string, store: StoreKind) =>
  Effect.gen(function* () {
    const tokens = yield* readTokens
    if (typeof tokens !== "number") return [tokens]
    const keys = yield* readKeys
    if (typeof keys !== "number") return [keys]
    return [ok(NAME, `the keyring is unlocked; ${counted(tokens, keys)}`)]
  }).pipe(Effect.provide(storeLayers(store, dataDir).both))

/**
 * The chosen store can be read: every stored token parses and every key can
 * be read (their values are never shown). On the files, only directories
 * that exist are opened, so the check creates nothing; the keyring must
 * answer and be unlocked.
 */
export const storeCheck: Check = {
  name: NAME,
  run: ({ dataDir, store }) =>
    Effect.gen(function* () {
      const real = yield* checkDataDir(dataDir, { create: false })
      if (store === "keyring") return yield* readKeyring(real ?? dataDir, store)
      if (real === undefined) return [ok(NAME, "nothing stored yet")]
      const layers = storeLayers("file", real)
      const has = (dir: string) => fs.existsSync(path.join(real, dir))
      const tokens = has("tokens") ? yield* Effect.provide(readTokens, layers.tokens) : 0
      if (typeof tokens !== "number") return [tokens]
      const keys = has("keys") ? yield* Effect.provide(readKeys, layers.keys) : 0
      if (typeof keys !== "number") return [keys]
      return [ok(NAME, counted(tokens, keys))]
    }).pipe(
      Effect.catchTags({
        DataDirRefused: () =>
          Effect.succeed([skip(NAME, "not read: the data directory is refused (see data-dir)")]),
        StoreFailure: (error) => Effect.succeed([failed("the store", error)]),
        StoreTimeout: (error) => Effect.succeed([failed("the store", error)]),
        KeyringUnavailable: (error) => Effect.succeed([keyringFailed(NAME, error)])
      })
    )
}

const minutes = (ms: number) => `${Math.round(Math.abs(ms) / 60_000)} min`

/** `--provider P` on the host: its token is stored, and is valid or can be refreshed here. */
export const storedTokenCheck: Check = {
  name: "token",
  run: (input) =>
    Effect.gen(function* () {
      if (input.token === undefined) return []
      const { provider, bucket } = input.token
      const check = `token ${provider}:${bucket}`
      const importIt = `import it: credproxy token import ${provider}${bucket === "default" ? "" : ` --bucket ${bucket}`} < token.json`
      const real = yield* checkDataDir(input.dataDir, { create: false })
      const stored =
        input.store === "keyring" || (real !== undefined && fs.existsSync(path.join(real, "tokens")))
      const token = stored
        ? yield* Effect.flatMap(TokenStore, (tokens) => tokens.getLatest({ provider, bucket })).pipe(
            Effect.provide(storeLayers(input.store, real ?? input.dataDir).tokens)
          )
        : undefined
      if (token === undefined) return [fail(check, "no such token is stored", importIt)]
      const left = token.expiry * 1000 - (yield* Clock.currentTimeMillis)
      if (left > 0) return [ok(check, `stored, valid for ${minutes(left)}`)]
      const providers = yield* load({ dataDir: input.dataDir, file: input.providersFile }).pipe(
        Logger.withMinimumLogLevel(LogLevel.None),
        Effect.orElseSucceed(() => [])
      )
      if (token.refresh_token === undefined) {
        return [fail(check, `expired ${minutes(left)} ago, and no refresh token is stored`, importIt)]
      }
      if (!providers.some((p) => p.name === provider)) {
        return [
          fail(
            check,
            `expired ${minutes(left)} ago, and ${provider} is not in the providers file`,
            `add ${provider} to the providers file, or ${importIt}`
          )
        ]
      }
      return [ok(check, `stored, expired ${minutes(left)} ago: refreshed on the host on its next use`)]
    }).pipe(
      Effect.catchTags({
        DataDirRefused: () =>
          Effect.succeed([skip("token", "not read: the data directory is refused (see data-dir)")]),
        StoreFailure: (error) => Effect.succeed([failed("token", error)]),
        StoreTimeout: (error) => Effect.succeed([failed("token", error)]),
        KeyringUnavailable: (error) => Effect.succeed([keyringFailed("token", error)])
      })
    )
}
