import * as fs from "node:fs"
import * as Effect from "effect/Effect"
import { UsageError } from "../errors/usage.js"

/**
 * Reads `--capability-token-file`: the file must be readable by its owner
 * only and must hold a non-empty secret; surrounding whitespace (a trailing
 * newline) is not part of the token. Messages never include the secret.
 */
export const readCapabilityTokenFile = (file: string): Effect.Effect<string, UsageError> =>
  Effect.try({
    try: () => {
      const stat = fs.statSync(file)
      return { stat, text: stat.isFile() ? fs.readFileSync(file, "utf8") : "" }
    },
    catch: (cause) =>
      new UsageError({ reason: `cannot read capability token file ${file}: ${(cause as Error).message}` })
  }).pipe(
    Effect.flatMap(({ stat, text }) => {
      if (!stat.isFile())
        return Effect.fail(new UsageError({ reason: `capability token file ${file} is not a regular file` }))
      if ((stat.mode & 0o077) !== 0) {
        return Effect.fail(
          new UsageError({
            reason: `capability token file ${file} has mode ${(stat.mode & 0o777).toString(8)}; it must be readable by its owner only (chmod 600 it)`
          })
        )
      }
      const token = text.trim()
      return token === ""
        ? Effect.fail(new UsageError({ reason: `capability token file ${file} is empty` }))
        : Effect.succeed(token)
    })
  )
