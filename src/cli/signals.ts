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
