import * as Effect from "effect/Effect"

/**
 * What `credproxy login` tells the user, on stderr (stdout carries only the
 * final JSON line): plain sentences, and while it waits, when stderr is a
 * terminal, a spinner with a countdown on one line that is rewritten in
 * place. Without a terminal (a pipe, a log file) there is no spinner: one
 * sentence says how long the login may take.
 */
export interface LoginPrompt {
  readonly say: (text: string) => Effect.Effect<void>
  /** One frame of the spinner; `secondsLeft` until the login session ends. Nothing without a terminal. */
  readonly waiting: (secondsLeft: number) => Effect.Effect<void>
  /** Clears the spinner's line, if there is one. */
  readonly doneWaiting: Effect.Effect<void>
}

const FRAMES = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"]

const clock = (seconds: number): string => {
  const whole = Math.max(0, Math.ceil(seconds))
  return `${Math.floor(whole / 60)}:${String(whole % 60).padStart(2, "0")}`
}

export const makeLoginPrompt = (stream: {
  readonly isTTY?: boolean
  readonly write: (text: string) => unknown
}): LoginPrompt => {
  const tty = stream.isTTY === true
  let frame = 0
  let spinning = false
  return {
    say: (text) =>
      Effect.sync(() => {
        stream.write(`${spinning ? "\r\x1b[K" : ""}${text}\n`)
        spinning = false
      }),
    waiting: (secondsLeft) =>
      Effect.sync(() => {
        if (!tty) return
        spinning = true
        frame = (frame + 1) % FRAMES.length
        stream.write(`\r\x1b[K${FRAMES[frame]} waiting for the login (${clock(secondsLeft)} left)`)
      }),
    doneWaiting: Effect.sync(() => {
      if (spinning) stream.write("\r\x1b[K")
      spinning = false
    })
  }
}

/** `m:ss` of a number of seconds, for the messages. */
export const minutesAndSeconds = clock
