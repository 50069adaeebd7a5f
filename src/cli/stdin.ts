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
