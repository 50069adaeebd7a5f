import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"

export type LogLevelName = "error" | "warn" | "info" | "debug" | "trace"
export type LogFormat = "pretty" | "json"

export const LOG_LEVELS: ReadonlyArray<LogLevelName> = ["error", "warn", "info", "debug", "trace"]

const levels: Record<LogLevelName, LogLevel.LogLevel> = {
  error: LogLevel.Error,
  warn: LogLevel.Warning,
  info: LogLevel.Info,
  debug: LogLevel.Debug,
  trace: LogLevel.Trace
}

/**
 * Every log line goes to stderr (stdout carries only the ready line): pretty
 * for people, or exactly one JSON object per line for machines.
 */
export const layer = (options: { readonly level: LogLevelName; readonly format: LogFormat }) =>
  Layer.merge(
    Logger.replace(
      Logger.defaultLogger,
      options.format === "json"
        ? Logger.withConsoleError(Logger.jsonLogger)
        : Logger.prettyLogger({ stderr: true, colors: "auto", mode: "tty" })
    ),
    Logger.minimumLogLevel(levels[options.level])
  )
