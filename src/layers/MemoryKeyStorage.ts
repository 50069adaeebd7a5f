import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import { KeyStorage, type KeyStorageShape } from "../services/KeyStorage.js"

/** API keys in a map, for logic tests; reads answer with ready `Exit`s like the file storage's hot path. */

const EXIT_UNDEFINED: Exit.Exit<string | undefined> = Exit.succeed(undefined)
const EXIT_TRUE: Exit.Exit<boolean> = Exit.succeed(true)
const EXIT_FALSE: Exit.Exit<boolean> = Exit.succeed(false)

const makeUnsafe = (): KeyStorageShape => {
  const entries = new Map<string, Exit.Exit<string | undefined>>()
  return KeyStorage.of({
    get: (name) => entries.get(name) ?? EXIT_UNDEFINED,
    has: (name) => (entries.has(name) ? EXIT_TRUE : EXIT_FALSE),
    list: Effect.sync(() => [...entries.keys()].sort()),
    set: (name, value) =>
      Effect.sync(() => {
        entries.set(name, Exit.succeed(value))
      }),
    remove: (name) =>
      Effect.sync(() => {
        entries.delete(name)
      })
  })
}

/** A fresh, empty in-memory key storage. */
export const make: Effect.Effect<KeyStorageShape> = Effect.sync(makeUnsafe)

/** A fresh, empty in-memory key storage per Layer build. */
export const layer: Layer.Layer<KeyStorage> = Layer.effect(KeyStorage, make)
