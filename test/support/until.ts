/** What `poll` found: the value that satisfied it, and how long it took. */
export interface Polled<A> {
  readonly value: A
  readonly elapsedMs: number
}

export interface PollOptions {
  /** Give up after this long (real time); a generous bound, correctness never depends on it. Default 5 s. */
  readonly limitMs?: number
  /** Pause between probes. Default 5 ms. */
  readonly intervalMs?: number
  /** What is waited for, for the failure message. */
  readonly what?: string
}

/**
 * The one way tests wait in real time: asks `probe` (sync or async) until
 * `done` holds for its answer, then resolves with that answer and the time it
 * took; rejects after `limitMs` naming what was waited for and the last answer.
 * Waits are for events (a counter reached, a file appeared, a timer
 * registered), never a fixed sleep before a negative check.
 */
export const poll = async <A>(
  probe: () => A | Promise<A>,
  done: (value: A) => boolean,
  options: PollOptions = {}
): Promise<Polled<A>> => {
  const { limitMs = 5_000, intervalMs = 5, what = "a condition" } = options
  const started = Date.now()
  for (;;) {
    const value = await probe()
    const elapsedMs = Date.now() - started
    if (done(value)) return { value, elapsedMs }
    if (elapsedMs >= limitMs) {
      throw new Error(
        `timed out after ${limitMs} ms waiting for ${what}; last value: ${JSON.stringify(value)}`
      )
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs))
  }
}

/** `poll` for a condition that holds or not. */
export const until = async (
  condition: () => boolean | Promise<boolean>,
  options: PollOptions = {}
): Promise<void> => {
  await poll(condition, (holds) => holds, options)
}
