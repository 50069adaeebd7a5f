import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as StderrLogger from "../layers/StderrLogger.js"
import { type ServeOptions, serverLayer } from "./ServeOptions.js"
import { serve } from "./serve.js"

export interface LoggingOptions {
  readonly logLevel?: StderrLogger.LogLevelName | undefined
  readonly logFormat?: StderrLogger.LogFormat | undefined
}

/**
 * The server from options, on the embedded file store, logging to stderr:
 * what `credproxy serve`, `credproxy exec` and `startCredentialProxy` run. The
 * Layers are built into the caller's scope, so they live exactly as long as
 * the server does.
 */
export const runServer = (options: ServeOptions & LoggingOptions) =>
  Effect.gen(function* () {
    const layer = yield* serverLayer(options)
    const context = yield* Layer.build(layer)
    return yield* Effect.provide(serve, context)
  }).pipe(
    Effect.provide(
      StderrLogger.layer({ level: options.logLevel ?? "info", format: options.logFormat ?? "pretty" })
    )
  )
