import * as Effect from "effect/Effect"
import * as FiberRef from "effect/FiberRef"
import * as HashSet from "effect/HashSet"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import { colorsFor } from "../lib/colors.js"

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
 * The two ways of writing to stderr, one instance each, so that a nested
 * `layer` can tell them apart. Colours only when stderr itself is a terminal
 * and `NO_COLOR` is unset (Effect's "auto" looks at stdout and ignores it).
 */
const writers: Record<LogFormat, Logger.Logger<unknown, void>> = {
  pretty: Logger.prettyLogger({ stderr: true, colors: colorsFor(process.stderr), mode: "tty" }),
  json: Logger.withConsoleError(Logger.jsonLogger)
}

/**
 * Every log line goes to stderr (stdout carries only answers and the ready
 * line): pretty for people, or exactly one JSON object per line for machines.
 * The chosen writer takes the place of Effect's default logger and of any
 * writer of an enclosing `layer`, so a command's own format wins and no line
 * is written twice.
 */
export const layer = (options: { readonly level: LogLevelName; readonly format: LogFormat }) =>
  Layer.merge(
    Layer.scopedDiscard(
      Effect.locallyScopedWith(FiberRef.currentLoggers, (loggers) =>
        HashSet.add(
          HashSet.remove(
            HashSet.remove(HashSet.remove(loggers, Logger.defaultLogger), writers.pretty),
            writers.json
          ),
          writers[options.format]
        )
      )
    ),
    Logger.minimumLogLevel(levels[options.level])
  )
