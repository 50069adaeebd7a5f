import * as Effect from "effect/Effect"
import * as FiberRef from "effect/FiberRef"
import * as Layer from "effect/Layer"
import * as LogLevel from "effect/LogLevel"
import * as Runtime from "effect/Runtime"
import { type AuditLevel, AuditLog, type AuditLogShape } from "../services/AuditLog.js"

const levels: Record<AuditLevel, LogLevel.LogLevel> = {
  Error: LogLevel.Error,
  Warning: LogLevel.Warning,
  Info: LogLevel.Info,
  Debug: LogLevel.Debug
}

/**
 * The audit log over the Effect logger the program runs with (format, level
 * and destination come from its Layers). The level is read once, when the
 * layer is built, so a disabled level costs one boolean test per request.
 */
export const make: Effect.Effect<AuditLogShape> = Effect.gen(function* () {
  const runtime = yield* Effect.runtime<never>()
  const minimum = yield* FiberRef.get(FiberRef.currentMinimumLogLevel)
  const run = Runtime.runSync(runtime)
  const enabled = (level: LogLevel.LogLevel) => LogLevel.greaterThanEqual(level, minimum)
  const log = (level: LogLevel.LogLevel, message: string, fields?: Readonly<Record<string, unknown>>) =>
    run(
      Effect.logWithLevel(level, message).pipe(fields === undefined ? (e) => e : Effect.annotateLogs(fields))
    )
  return {
    requestsEnabled: enabled(LogLevel.Debug),
    request: (entry) => {
      if (enabled(LogLevel.Debug)) log(LogLevel.Debug, "request", { ...entry })
    },
    event: (level, message, fields) => {
      const logLevel = levels[level]
      if (enabled(logLevel)) log(logLevel, message, fields)
    }
  }
})

export const layer = Layer.effect(AuditLog, make)
