import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import type { StoreKind } from "../config/store-kind.js"
import { NotFound } from "../errors/errors.js"
import { STANDARD_INPUT, UsageError } from "../errors/usage.js"
import { storeLayers } from "../layers/StoreLayers.js"
import { KeyStorage } from "../services/KeyStorage.js"
import { MAX_VALUE_BYTES } from "../services/TokenStore.js"
import { requireName } from "./names.js"
import * as shared from "./options.js"
import { readStdin } from "./stdin.js"

const name = Args.text({ name: "NAME" }).pipe(Args.withDescription("API key name"))

/** Runs a key command against the chosen store (for the resolved data directory). */
const withKeys = <A, E>(
  flags: { readonly dataDir: string; readonly store: StoreKind },
  use: (keys: typeof KeyStorage.Service) => Effect.Effect<A, E>
) => Effect.flatMap(KeyStorage, use).pipe(Effect.provide(storeLayers(flags.store, flags.dataDir).keys))

/** One trailing newline (from `echo` or a here-doc) is not part of the key. */
const dropTrailingNewline = (text: string): string => text.replace(/\r?\n$/, "")

export const setCommand = Command.make(
  "set",
  { dataDir: shared.dataDir, store: shared.store, name },
  (flags) =>
    Effect.gen(function* () {
      const keyName = yield* requireName(flags.name, "NAME")
      const value = dropTrailingNewline(yield* readStdin)
      if (value === "") {
        return yield* new UsageError({ reason: "EmptyKey", subject: STANDARD_INPUT })
      }
      // The stores read no value over this, so a larger key could be stored but never served.
      if (Buffer.byteLength(value) > MAX_VALUE_BYTES) {
        return yield* new UsageError({
          reason: "KeyTooLarge",
          subject: STANDARD_INPUT,
          detail: `${MAX_VALUE_BYTES}`
        })
      }
      yield* withKeys(flags, (keys) => keys.set(keyName, value))
      yield* Console.error(`stored API key ${keyName}`)
    })
).pipe(Command.withDescription("read an API key from stdin and store it (one trailing newline dropped)"))

export const listKeysCommand = Command.make(
  "list",
  { dataDir: shared.dataDir, store: shared.store },
  (flags) =>
    withKeys(flags, (keys) =>
      Effect.flatMap(keys.list(), (names) => Effect.forEach(names, (n) => Console.log(n)))
    )
).pipe(Command.withDescription("list stored API key names, one a line"))

export const removeKeyCommand = Command.make(
  "remove",
  { dataDir: shared.dataDir, store: shared.store, name },
  (flags) =>
    Effect.gen(function* () {
      const keyName = yield* requireName(flags.name, "NAME")
      yield* withKeys(flags, (keys) =>
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
