import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type { StoreError } from "../errors/errors.js"

/**
 * Holds API keys by name. The socket only reads (`get`, `has`, `list`);
 * `set` and `remove` are for the host CLI. Like the token store, reads may be
 * cached for at most 1 s and may complete as an `Exit`.
 */
export interface KeyStorageShape {
  readonly get: (name: string) => Effect.Effect<string | undefined, StoreError>
  readonly has: (name: string) => Effect.Effect<boolean, StoreError>
  readonly list: Effect.Effect<ReadonlyArray<string>, StoreError>
  readonly set: (name: string, value: string) => Effect.Effect<void, StoreError>
  /** Deletes the key; succeeds when nothing was stored. */
  readonly remove: (name: string) => Effect.Effect<void, StoreError>
}

export class KeyStorage extends Context.Tag("credproxy/KeyStorage")<KeyStorage, KeyStorageShape>() {}
