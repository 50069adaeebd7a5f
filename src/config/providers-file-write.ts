import * as fsp from "node:fs/promises"
import * as path from "node:path"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import { errorCode } from "../errors/errors.js"
import { UsageError } from "../errors/usage.js"
import { writeFileAtomicAsync } from "../layers/file-store/atomic-file.js"
import type { StoreDir } from "../layers/file-store/store-dir.js"
import { parseProviders } from "./providers-file.js"

/**
 * Adds (or replaces) one provider entry in the providers file (PROTOCOL.md
 * §17, `credproxy providers add`): the other entries are kept as they are
 * written, the whole file must still pass the checks of `parseProviders`,
 * and it is replaced atomically (a temp file, created 0600 and fsynced, then
 * renamed; never through a symbolic link). Messages name the file, never a
 * value in it.
 */

const usage = (file: string, problem: string) =>
  new UsageError({ reason: "ProvidersFile", subject: file, detail: problem })

/** The providers file's directory as the atomic write addresses it (by path: it is not a store directory). */
const directoryOf = (file: string): StoreDir => {
  const dir = path.dirname(file)
  return {
    path: dir,
    relative: path.basename(dir),
    entry: (name) => path.join(dir, name),
    sync: async () => {
      const handle = await fsp.open(dir, "r").catch(() => undefined)
      await handle?.sync().catch(() => undefined)
      await handle?.close()
    },
    inPlace: async () => true,
    close: async () => {}
  }
}

/** The file's current contents as an object (an empty file of providers when it does not exist yet). */
const readCurrent = (file: string): Effect.Effect<Record<string, unknown>, UsageError> =>
  Effect.tryPromise({
    try: async () => {
      const stats = await fsp.lstat(file).catch((error: unknown) => {
        if (errorCode(error) === "ENOENT") return undefined
        throw error
      })
      if (stats === undefined) return { providers: {} }
      if (stats.isSymbolicLink()) return "is a symbolic link; give the real file"
      if (!stats.isFile()) return "is not a regular file"
      try {
        return JSON.parse(await fsp.readFile(file, "utf8")) as unknown
      } catch (error) {
        if (errorCode(error) !== undefined) throw error
        return "is not valid JSON; fix it or remove it first"
      }
    },
    catch: (error) => usage(file, `cannot be read (${errorCode(error) ?? "unknown error"})`)
  }).pipe(
    Effect.flatMap((current) => {
      if (typeof current === "string") return Effect.fail(usage(file, current))
      const checked = parseProviders(current)
      if (Either.isLeft(checked)) return Effect.fail(usage(file, `${checked.left}; fix it first`))
      return Effect.succeed(current as Record<string, unknown>)
    })
  )

export const writeProviderEntry = (
  file: string,
  name: string,
  entry: Readonly<Record<string, unknown>>
): Effect.Effect<void, UsageError> =>
  Effect.gen(function* () {
    const current = yield* readCurrent(file)
    const next = { ...current, providers: { ...(current.providers as object), [name]: entry } }
    const checked = parseProviders(next)
    if (Either.isLeft(checked)) return yield* usage(file, checked.left)
    yield* Effect.tryPromise({
      try: () =>
        writeFileAtomicAsync(directoryOf(file), path.basename(file), `${JSON.stringify(next, null, 2)}\n`),
      catch: (error) => usage(file, `cannot be written (${errorCode(error) ?? "unknown error"})`)
    })
  })
