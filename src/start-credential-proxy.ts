import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import { resolveDataDir } from "./config/data-dir.js"
import type { StoreKind } from "./config/store-kind.js"
import * as HostStores from "./layers/HostStores.js"
import type { LogLevelName } from "./layers/StderrLogger.js"
import { storeLayers } from "./layers/StoreLayers.js"
import { runServer } from "./server/run-server.js"
import type { StatusSnapshot } from "./server/ServerStatus.js"

/** Options of `startCredentialProxy`: those of `credproxy serve` (PROTOCOL.md §15), and the host's own stores. */
export interface CredentialProxyOptions {
  /** Default: `$CREDPROXY_HOME`, else `${XDG_DATA_HOME:-~/.local/share}/credproxy`. */
  readonly dataDir?: string
  /** Where credentials are kept (docs/PROTOCOL.md §21): `"file"` (default) or `"keyring"`, the OS keyring. */
  readonly store?: StoreKind
  readonly socketDir?: string
  readonly allow?: ReadonlyArray<string>
  readonly allowKeys?: ReadonlyArray<string>
  readonly rateLimit?: number
  readonly maxConnections?: number
  readonly allowUids?: ReadonlyArray<number>
  readonly capabilityToken?: string
  /** OAuth providers file (PROTOCOL.md §16); default `{dataDir}/providers.json`. */
  readonly providers?: string
  /** Every connection restricted (§19): it may only read what it names. */
  readonly restrict?: boolean
  /** Confirm on first use: each credential's first use by each sandbox waits for `credproxy approve`. */
  readonly confirm?: boolean
  readonly logLevel?: LogLevelName
  /** The host program's own token store, served instead of credproxy's store. */
  readonly tokenStore?: HostStores.HostTokenStore
  /** The host program's own API key storage, served instead of credproxy's store. */
  readonly keyStorage?: HostStores.HostKeyStorage
}

export interface CredentialProxy {
  readonly socketPath: string
  /** Counters: connections, rejections, requests by op and outcome. */
  readonly status: () => StatusSnapshot
  /** Stops accepting, drains requests in flight (up to 5 s), closes connections, removes the socket. */
  readonly stop: () => Promise<void>
}

/**
 * The proxy for a host program that is not written with Effect: resolves
 * once the socket is listening. Rejects with the typed startup error
 * (`UsageError`, `ServerStartError`, `DataDirRefused`, `KeyringUnavailable`,
 * `StoreFailure`) when it cannot start. With `tokenStore` / `keyStorage` it serves the host's own
 * Promise-based stores: each call gets credproxy's deadline, a failure or a
 * hang is `INTERNAL_ERROR` on the socket (never the host's message), and
 * credproxy serialises its own writes per provider:bucket.
 */
export const startCredentialProxy = async (
  options: CredentialProxyOptions = {}
): Promise<CredentialProxy> => {
  const { tokenStore, keyStorage, ...serveOptions } = options
  const dataDir = options.dataDir ?? resolveDataDir(undefined)
  const stores =
    tokenStore === undefined && keyStorage === undefined
      ? undefined
      : HostStores.layer({ tokenStore, keyStorage }, storeLayers(options.store ?? "file", dataDir))
  const scope = Effect.runSync(Scope.make())
  const started = await Effect.runPromiseExit(
    runServer({ ...serveOptions, dataDir }, { stores }).pipe(Scope.extend(scope))
  )
  if (Exit.isFailure(started)) {
    await Effect.runPromise(Scope.close(scope, started))
    throw Cause.squash(started.cause)
  }
  let stopping: Promise<void> | undefined
  return {
    socketPath: started.value.socketPath,
    status: started.value.status,
    stop: () => {
      stopping ??= Effect.runPromise(Scope.close(scope, Exit.void))
      return stopping
    }
  }
}
