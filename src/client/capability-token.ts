import * as fs from "node:fs"

/**
 * Where the inner process finds its capability token, in order: the explicit
 * option; `LLXPRT_CAPABILITY_FD`, a descriptor inherited from the launcher
 * (read once, then closed, so nothing else in the process can read it again);
 * `LLXPRT_CAPABILITY_FILE`, a file mounted into a container. Never an
 * environment variable holding the secret itself. Any non-empty text is
 * taken (a generated token is 64 hex characters and a newline, §21);
 * surrounding whitespace is not part of the token.
 */
export const resolveCapabilityToken = (
  explicit: string | undefined,
  env: NodeJS.ProcessEnv = process.env
): string | undefined => {
  if (explicit !== undefined) return nonEmpty(explicit, "the capabilityToken option")
  const fd = env.LLXPRT_CAPABILITY_FD
  if (fd !== undefined && /^\d+$/.test(fd)) {
    const descriptor = Number(fd)
    try {
      return nonEmpty(fs.readFileSync(descriptor, "utf8"), `descriptor ${descriptor}`)
    } finally {
      fs.closeSync(descriptor)
      delete env.LLXPRT_CAPABILITY_FD
    }
  }
  const file = env.LLXPRT_CAPABILITY_FILE
  if (file !== undefined && file !== "") return nonEmpty(fs.readFileSync(file, "utf8"), file)
  return undefined
}

const nonEmpty = (text: string, where: string): string => {
  const token = text.trim()
  if (token === "") throw new Error(`the capability token of ${where} is empty`)
  return token
}
