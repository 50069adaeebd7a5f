import * as readline from "node:readline"
import * as Effect from "effect/Effect"
import { errorCode } from "../errors/errors.js"
import { STANDARD_INPUT, UsageError } from "../errors/usage.js"

/** Reads all of standard input as UTF-8 (for `token import` and `key set`). */
export const readStdin: Effect.Effect<string, UsageError> = Effect.tryPromise({
  try: async () => {
    const chunks: Array<Buffer> = []
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
    return Buffer.concat(chunks).toString("utf8")
  },
  catch: (cause) =>
    new UsageError({
      reason: "StdinUnreadable",
      subject: STANDARD_INPUT,
      detail: errorCode(cause) ?? "error"
    })
})

/**
 * Reads one line of standard input (a pasted code); fails when input ends
 * first. Interrupting it (Ctrl-C) stops reading at once. Standard input is
 * closed afterwards: nothing else is read, and an open one would keep the
 * process from exiting.
 */
export const readLine: Effect.Effect<string, UsageError> = Effect.async<string, UsageError>((resume) => {
  const lines = readline.createInterface({ input: process.stdin, terminal: false })
  let answered = false
  const done = () => {
    lines.close()
    process.stdin.destroy()
  }
  lines.once("line", (line) => {
    answered = true
    done()
    resume(Effect.succeed(line))
  })
  lines.once("close", () => {
    if (!answered) resume(Effect.fail(new UsageError({ reason: "NoCodePasted", subject: STANDARD_INPUT })))
  })
  return Effect.sync(done)
})
