import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import { NotFound } from "../errors/errors.js"
import { STANDARD_INPUT, UsageError } from "../errors/usage.js"
import * as FileKeyStorage from "../layers/FileKeyStorage.js"
import { MAX_FILE_BYTES } from "../layers/file-store/file-read.js"
import { KeyStorage } from "../services/KeyStorage.js"
import { requireName } from "./names.js"
import * as shared from "./options.js"
import { readStdin } from "./stdin.js"

const name = Args.text({ name: "NAME" }).pipe(Args.withDescription("API key name"))

const withKeys = <A, E>(dataDir: string, use: (keys: typeof KeyStorage.Service) => Effect.Effect<A, E>) =>
  Effect.flatMap(KeyStorage, use).pipe(Effect.provide(FileKeyStorage.layer(dataDir)))

/** One trailing newline (from `echo` or a here-doc) is not part of the key. */
const dropTrailingNewline = (text: string): string => text.replace(/\r?\n$/, "")

export const setCommand = Command.make("set", { dataDir: shared.dataDir, name }, (flags) =>
  Effect.gen(function* () {
    const keyName = yield* requireName(flags.name, "NAME")
    const value = dropTrailingNewline(yield* readStdin)
    if (value === "") {
      return yield* new UsageError({ reason: "EmptyKey", subject: STANDARD_INPUT })
    }
    // The store reads no file over this, so a larger key could be stored but never served.
    if (Buffer.byteLength(value) > MAX_FILE_BYTES) {
      return yield* new UsageError({
        reason: "KeyTooLarge",
        subject: STANDARD_INPUT,
        detail: `${MAX_FILE_BYTES}`
      })
    }
    yield* withKeys(flags.dataDir, (keys) => keys.set(keyName, value))
    yield* Console.error(`stored API key ${keyName}`)
  })
).pipe(Command.withDescription("read an API key from stdin and store it (one trailing newline dropped)"))

export const listKeysCommand = Command.make("list", { dataDir: shared.dataDir }, (flags) =>
  withKeys(flags.dataDir, (keys) =>
    Effect.flatMap(keys.list(), (names) => Effect.forEach(names, (n) => Console.log(n)))
  )
).pipe(Command.withDescription("list stored API key names, one a line"))

export const removeKeyCommand = Command.make("remove", { dataDir: shared.dataDir, name }, (flags) =>
  Effect.gen(function* () {
    const keyName = yield* requireName(flags.name, "NAME")
    yield* withKeys(flags.dataDir, (keys) =>
      Effect.gen(function* () {
        if (!(yield* keys.has(keyName))) return yield* new NotFound({ what: "api key", name: keyName })
        yield* keys.remove(keyName)
      })
    )
    yield* Console.error(`removed API key ${keyName}`)
  })
).pipe(Command.withDescription("delete a stored API key"))

export const keyCommand = Command.make("key").pipe(
  Command.withDescription("manage stored API keys on the host"),
  Command.withSubcommands([setCommand, listKeysCommand, removeKeyCommand])
)
