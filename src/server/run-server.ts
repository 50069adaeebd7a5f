import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as StderrLogger from "../layers/StderrLogger.js"
import { serve } from "./serve.js"
import { type ServeOptions, type ServerParts, serverLayer } from "./server-layer.js"

export interface LoggingOptions {
  readonly logLevel?: StderrLogger.LogLevelName | undefined
  readonly logFormat?: StderrLogger.LogFormat | undefined
}

/**
 * The server from options, logging to stderr: what `credproxy serve`,
 * `credproxy exec` and `startCredentialProxy` run. The Layers are built into
 * the caller's scope, so they live exactly as long as the server does.
 */
export const runServer = (options: ServeOptions & LoggingOptions, parts: ServerParts = {}) =>
  Effect.gen(function* () {
    const layer = yield* serverLayer(options, parts)
    const context = yield* Layer.build(layer)
    return yield* Effect.provide(serve, context)
  }).pipe(
    Effect.provide(
      StderrLogger.layer({ level: options.logLevel ?? "info", format: options.logFormat ?? "pretty" })
    )
  )
