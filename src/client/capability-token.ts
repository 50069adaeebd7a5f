import * as fs from "node:fs"

/**
 * Where the inner process finds its capability token, in order: the explicit
 * option; `LLXPRT_CAPABILITY_FD`, a descriptor inherited from the launcher
 * (read once, then closed, so nothing else in the process can read it again);
 * `LLXPRT_CAPABILITY_FILE`, a file mounted into a container. Never an
 * environment variable holding the secret itself. Surrounding whitespace is
 * not part of the token.
 */
export const resolveCapabilityToken = (
  explicit: string | undefined,
  env: NodeJS.ProcessEnv = process.env
): string | undefined => {
  if (explicit !== undefined) return explicit
  const fd = env.LLXPRT_CAPABILITY_FD
  if (fd !== undefined && /^\d+$/.test(fd)) {
    const descriptor = Number(fd)
    try {
      return fs.readFileSync(descriptor, "utf8").trim()
    } finally {
      fs.closeSync(descriptor)
      delete env.LLXPRT_CAPABILITY_FD
    }
  }
  const file = env.LLXPRT_CAPABILITY_FILE
  if (file !== undefined && file !== "") return fs.readFileSync(file, "utf8").trim()
  return undefined
}
