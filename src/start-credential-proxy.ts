import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import { resolveDataDir } from "./config/data-dir.js"
import type { LogLevelName } from "./layers/StderrLogger.js"
import { runServer } from "./server/run-server.js"
import type { StatusSnapshot } from "./server/ServerStatus.js"

/** Options of `startCredentialProxy`: those of `credproxy serve` (PROTOCOL.md §15). */
export interface CredentialProxyOptions {
  /** Default: `$CREDPROXY_HOME`, else `${XDG_DATA_HOME:-~/.local/share}/credproxy`. */
  readonly dataDir?: string
  readonly socketDir?: string
  readonly allow?: ReadonlyArray<string>
  readonly allowKeys?: ReadonlyArray<string>
  readonly rateLimit?: number
  readonly maxConnections?: number
  readonly allowUids?: ReadonlyArray<number>
  readonly capabilityToken?: string
  /** OAuth providers file (PROTOCOL.md §16); default `{dataDir}/providers.json`. */
  readonly providers?: string
  readonly logLevel?: LogLevelName
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
 * (`UsageError`, `ServerStartError`, `StoreFailure`) when it cannot start.
 */
export const startCredentialProxy = async (
  options: CredentialProxyOptions = {}
): Promise<CredentialProxy> => {
  const scope = Effect.runSync(Scope.make())
  const started = await Effect.runPromiseExit(
    runServer({ ...options, dataDir: options.dataDir ?? resolveDataDir(undefined) }).pipe(Scope.extend(scope))
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
