import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type * as Option from "effect/Option"
import type { StoreError } from "../errors/errors.js"

/**
 * Holds API keys by name. The socket only reads (`cached`, `get`, `has`,
 * `list`); `set` and `remove` are for the host CLI. Like the token store, it
 * may answer from memory that is at most 1 s behind other processes.
 */
export interface KeyStorageShape {
  /** What the storage already holds for `name`, without I/O: `Some(key)`, `Some(undefined)` (known absent) or `None`. */
  readonly cached: (name: string) => Option.Option<string | undefined>
  readonly get: (name: string) => Effect.Effect<string | undefined, StoreError>
  readonly has: (name: string) => Effect.Effect<boolean, StoreError>
  /** Stored key names that `include` lets through (all without it); at most LISTING_LIMIT entries are read. */
  readonly list: (include?: (name: string) => boolean) => Effect.Effect<ReadonlyArray<string>, StoreError>
  readonly set: (name: string, value: string) => Effect.Effect<void, StoreError>
  /** Deletes the key; succeeds when nothing was stored. */
  readonly remove: (name: string) => Effect.Effect<void, StoreError>
}

export class KeyStorage extends Context.Tag("credproxy/KeyStorage")<KeyStorage, KeyStorageShape>() {}
