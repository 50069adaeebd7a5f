import * as Command from "@effect/cli/Command"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as NodePath from "@effect/platform-node/NodePath"
import * as NodeTerminal from "@effect/platform-node/NodeTerminal"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as StderrLogger from "../layers/StderrLogger.js"
import { colorsFor, styler } from "../lib/colors.js"
import { commandTree, PROGRAM, root, VERSION } from "./commands.js"
import { EXIT_FAILURE, EXIT_OK, withExitStatus } from "./exit-status.js"
import { commandOf, helpRequested } from "./help/command-tree.js"
import { MAX_HELP_WIDTH, renderHelp } from "./help/render-help.js"
import { LOG_LEVEL_ALIAS } from "./options.js"
import { forwardSignal, type StopSignal, stopStatus } from "./signals.js"

const cli = Command.run(root, { name: PROGRAM, version: VERSION })

/**
 * What every command runs on. Logs go to stderr (at info) unless a command
 * sets its own: stdout carries only a command's answer.
 */
const platform = Layer.mergeAll(
  NodeFileSystem.layer,
  NodePath.layer,
  NodeTerminal.layer,
  StderrLogger.layer({ level: "info", format: "pretty" })
)

/**
 * Passes `--log-level X` / `--log-level=X` (PROTOCOL.md §13) to our option
 * under its alias, so @effect/cli's built-in option of the same name does not
 * swallow it. Arguments after `--` belong to `exec`'s command and are kept.
 */
const routeLogLevel = (argv: ReadonlyArray<string>): Array<string> => {
  const end = argv.indexOf("--")
  const own = end < 0 ? argv : argv.slice(0, end)
  const rest = end < 0 ? [] : argv.slice(end)
  return [
    ...own.flatMap((arg) =>
      arg === "--log-level"
        ? [LOG_LEVEL_ALIAS]
        : arg.startsWith("--log-level=")
          ? [LOG_LEVEL_ALIAS, arg.slice("--log-level=".length)]
          : [arg]
    ),
    ...rest
  ]
}

/**
 * What the arguments ask for: a command's help, which credproxy lays out
 * itself (plain unless stdout is a terminal and NO_COLOR is unset), or the
 * command, parsed and run by @effect/cli (`--completions` and `--version`
 * included). A bad argument's message ends with where to find the usage.
 */
const program = (argv: ReadonlyArray<string>) => {
  const args = argv.slice(2)
  const help = helpRequested(commandTree, args)
  if (help !== undefined) {
    return Effect.sync(() => {
      const text = renderHelp(help, {
        program: PROGRAM,
        version: VERSION,
        width: process.stdout.isTTY ? (process.stdout.columns ?? MAX_HELP_WIDTH) : MAX_HELP_WIDTH,
        style: styler(colorsFor(process.stdout))
      })
      process.stdout.write(text)
      return EXIT_OK
    })
  }
  const usage = [PROGRAM, ...commandOf(commandTree, args).path].join(" ")
  return withExitStatus(cli(argv), usage)
}

/**
 * The exit status of the finished program: its own; when a stop signal
 * interrupted it, 0 (a clean stop) or, for a command the signal cancels,
 * 128 + the signal's number; 1 for a defect.
 */
const statusOf = (exit: Exit.Exit<number>, signal: StopSignal | undefined): number => {
  if (Exit.isSuccess(exit)) return exit.value
  if (Cause.isInterruptedOnly(exit.cause)) return signal === undefined ? EXIT_OK : stopStatus(signal)
  process.stderr.write(
    `credproxy: internal error; please report it with the lines below\n${Cause.pretty(exit.cause)}\n`
  )
  return EXIT_FAILURE
}

/**
 * Runs the command; the first SIGINT/SIGTERM interrupts it (the server drains
 * and removes its socket), a second one during the drain stops at once. Both
 * are clean stops (exit status 0), except for a command the signal cancels
 * (`credproxy login`: 128 + the signal's number).
 */
const main = (): void => {
  const fiber = Effect.runFork(program(routeLogLevel(process.argv)).pipe(Effect.provide(platform)))
  let signalled: StopSignal | undefined
  let status: number | undefined
  // The handler stays installed until the process exits: a signal that lands
  // after the command finished must not kill the process with that signal.
  const onSignal = (signal: StopSignal) => {
    if (status !== undefined) process.exit(status)
    if (forwardSignal(signal)) return
    if (signalled !== undefined) process.exit(stopStatus(signalled))
    signalled = signal
    fiber.unsafeInterruptAsFork(fiber.id())
  }
  process.on("SIGINT", onSignal)
  process.on("SIGTERM", onSignal)
  process.on("SIGHUP", onSignal)
  fiber.addObserver((exit) => {
    status = statusOf(exit, signalled)
    process.exitCode = status
    // After a stop signal, leave at once: more signals may be on their way, and
    // one landing while Node tears down its handlers would kill the process.
    if (signalled !== undefined) process.exit(status)
  })
}

main()
