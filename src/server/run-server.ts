import * as path from "node:path"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { checkDataDir } from "../layers/file-store/data-dir-check.js"
import * as StderrLogger from "../layers/StderrLogger.js"
import type { EgressSettings, RunningEgress } from "./egress/egress-server.js"
import { type RunningServer, serve } from "./serve.js"
import { type ServeOptions, type ServerParts, serverLayer } from "./server-layer.js"

/** The server, and its egress proxy when egress mode is on (docs/PROTOCOL.md §23). */
export interface RunningServerWithEgress extends RunningServer {
  readonly egress: RunningEgress | undefined
}

export interface LoggingOptions {
  readonly logLevel?: StderrLogger.LogLevelName | undefined
  readonly logFormat?: StderrLogger.LogFormat | undefined
}

/**
 * The server from options, logging to stderr: what `credproxy serve`,
 * `credproxy exec` and `startCredentialProxy` run. The data directory is
 * checked first (it may hold only the providers file when the host program
 * brings its own stores). The Layers are built into the caller's scope, so
 * they live exactly as long as the server does.
 */
export const runServer = (
  options: ServeOptions & LoggingOptions & { readonly egress?: EgressSettings | undefined },
  parts: ServerParts = {}
) =>
  Effect.gen(function* () {
    // Before anything in the data directory is read (the providers file and the stores are loaded
    // together): a refused one is `DataDirRefused` (§22), whichever part would have met it first.
    yield* checkDataDir(options.dataDir, { create: false })
    const layer = yield* serverLayer(options, parts)
    const context = yield* Layer.build(layer)
    const server = yield* Effect.provide(serve, context)
    // Egress mode (§23): its own listener on the same services, in the socket's directory.
    const settings = options.egress
    const egress =
      settings === undefined
        ? undefined
        : yield* Effect.provide(
            // Loaded only in egress mode (with its HTTP client, undici): a server without it stays smaller.
            Effect.flatMap(
              Effect.promise(() => import("./egress/egress-server.js")),
              ({ startEgress }) => startEgress(settings, path.dirname(server.socketPath))
            ),
            context
          )
    const running: RunningServerWithEgress = { ...server, egress }
    return running
  }).pipe(
    Effect.provide(
      StderrLogger.layer({ level: options.logLevel ?? "info", format: options.logFormat ?? "pretty" })
    )
  )
