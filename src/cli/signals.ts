import * as os from "node:os"
import * as Effect from "effect/Effect"

export type StopSignal = "SIGINT" | "SIGTERM" | "SIGHUP"

let forwarder: ((signal: StopSignal) => void) | undefined

/**
 * While `exec` runs a child, stop signals belong to the child: the CLI's
 * handler hands them here instead of stopping credproxy, and credproxy stops
 * when the child exits. Scoped: released, signals stop credproxy again.
 */
export const forwardSignalsTo = (forward: (signal: StopSignal) => void) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      forwarder = forward
    }),
    () =>
      Effect.sync(() => {
        forwarder = undefined
      })
  )

/** Hands the signal to a registered forwarder; false when none is registered. */
export const forwardSignal = (signal: StopSignal): boolean => {
  if (forwarder === undefined) return false
  forwarder(signal)
  return true
}

let stopEndsWithSignalStatus = false

/**
 * For a command that a stop signal cancels rather than ends cleanly
 * (`credproxy login`): from now on a stop exits 128 + the signal's number,
 * as a shell reports it (Ctrl-C: 130). Not undone: the process is ending.
 */
export const stopSignalsCancel: Effect.Effect<void> = Effect.sync(() => {
  stopEndsWithSignalStatus = true
})

/** The exit status of a stop by `signal`: 0 (a clean stop), or 128 + its number for a cancelling command. */
export const stopStatus = (signal: StopSignal): number =>
  stopEndsWithSignalStatus ? 128 + (os.constants.signals[signal] ?? 0) : 0
