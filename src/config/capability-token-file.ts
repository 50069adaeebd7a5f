import * as fs from "node:fs"
import * as Effect from "effect/Effect"
import { UsageError } from "../errors/usage.js"

const utf8 = new TextDecoder("utf-8", { fatal: true })

/** Why the file at `file` cannot hold a capability token, or its token. */
const check = (file: string): string | { readonly token: string } => {
  const stat = fs.lstatSync(file)
  if (stat.isSymbolicLink()) return "is a symbolic link; give the real file"
  if (!stat.isFile()) return "is not a regular file"
  const uid = process.getuid?.()
  if (uid !== undefined && stat.uid !== uid)
    return `is owned by uid ${stat.uid}, not by this user (uid ${uid})`
  if ((stat.mode & 0o077) !== 0) {
    return `has mode ${(stat.mode & 0o777).toString(8)}; it must be readable by its owner only (chmod 600 it)`
  }
  const bytes = fs.readFileSync(file)
  if (bytes.includes(0)) return "holds a NUL byte; it must hold the token as text"
  let text: string
  try {
    text = utf8.decode(bytes)
  } catch {
    return "is not valid UTF-8 text"
  }
  const token = text.trim()
  return token === "" ? "is empty" : { token }
}

/**
 * Reads `--capability-token-file` (PROTOCOL.md §9, §22): a regular file, not
 * a link, owned by this user and readable by its owner only, holding the
 * token as UTF-8 text without NUL bytes; surrounding whitespace (a trailing
 * newline) is not part of the token. Anything else is a `UsageError` (exit
 * 2) that names the file and never quotes its content.
 */
export const readCapabilityTokenFile = (file: string): Effect.Effect<string, UsageError> =>
  readSecretFile(file, "CapabilityTokenFile")

/** The same rules for any secret kept in a file of its own (the egress phantom, §23). */
export const readSecretFile = (
  file: string,
  reason: "CapabilityTokenFile" | "PhantomFile"
): Effect.Effect<string, UsageError> =>
  Effect.try({
    try: () => check(file),
    catch: (cause) =>
      new UsageError({
        reason,
        subject: file,
        detail: `cannot be read (${(cause as NodeJS.ErrnoException).code ?? "error"})`
      })
  }).pipe(
    Effect.flatMap((result) =>
      typeof result === "string"
        ? Effect.fail(new UsageError({ reason, subject: file, detail: result }))
        : Effect.succeed(result.token)
    )
  )
