import * as Layer from "effect/Layer"
import type { StoreKind } from "../config/store-kind.js"
import type { StoreFailure } from "../errors/errors.js"
import type { DataDirRefused, KeyringUnavailable } from "../errors/startup.js"
import type { KeyStorage } from "../services/KeyStorage.js"
import type { TokenStore } from "../services/TokenStore.js"
import * as FileKeyStorage from "./FileKeyStorage.js"
import * as FileTokenStore from "./FileTokenStore.js"
import * as KeyringKeyStorage from "./KeyringKeyStorage.js"
import * as KeyringTokenStore from "./KeyringTokenStore.js"
import * as KeyringClient from "./keyring/keyring-client.js"

/**
 * The Layers of the store credproxy keeps credentials in, chosen at start-up
 * (`config/store-kind.ts`; docs/PROTOCOL.md §21): the files of the data
 * directory, or the OS keyring. Every command that touches the store gets
 * its Layers here.
 */

export type StoreOpenError = StoreFailure | DataDirRefused | KeyringUnavailable

export interface StoreLayers {
  readonly tokens: Layer.Layer<TokenStore, StoreOpenError>
  readonly keys: Layer.Layer<KeyStorage, StoreOpenError>
  /** Both, on one connection to the backing store. */
  readonly both: Layer.Layer<TokenStore | KeyStorage, StoreOpenError>
}

/** The Layers of the `kind` store for `dataDir`; the keyring's options are for tests (their own service name). */
export const storeLayers = (
  kind: StoreKind,
  dataDir: string,
  keyring: KeyringClient.KeyringOptions = {}
): StoreLayers => {
  if (kind === "file") {
    const tokens = FileTokenStore.layer(dataDir)
    const keys = FileKeyStorage.layer(dataDir)
    return { tokens, keys, both: Layer.merge(tokens, keys) }
  }
  const client = KeyringClient.layer(keyring)
  const tokens = KeyringTokenStore.layer(dataDir)
  const keys = KeyringKeyStorage.layer
  return {
    tokens: Layer.provide(tokens, client),
    keys: Layer.provide(keys, client),
    both: Layer.provide(Layer.merge(tokens, keys), client)
  }
}
