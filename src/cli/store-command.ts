import { isDeepStrictEqual } from "node:util"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Console from "effect/Console"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import { STORE_KINDS, type StoreKind } from "../config/store-kind.js"
import { CopyNotVerified } from "../errors/copy.js"
import type { StoreError } from "../errors/errors.js"
import { UsageError } from "../errors/usage.js"
import { storeLayers } from "../layers/StoreLayers.js"
import { KeyStorage, type KeyStorageShape } from "../services/KeyStorage.js"
import { type TokenKey, TokenStore, type TokenStoreShape } from "../services/TokenStore.js"
import * as shared from "./options.js"

/**
 * `credproxy store copy --from KIND --to KIND [--move]` (docs/PROTOCOL.md §21):
 * every token and key of one store into the other. Each token is copied
 * under both stores' locks (the file store's first, so two copies in
 * opposite directions cannot wait for each other), then read back through a
 * second, fresh opening of the target and compared with the source; only
 * then, with `--move`, is it removed from the source. A copy replaces what
 * the target held under the same name. Running it again copies the same
 * values again (and, after `--move`, finds nothing left), so it is safe to
 * re-run after an interruption.
 */

interface Stores {
  readonly tokens: TokenStoreShape
  readonly keys: KeyStorageShape
}

const open = (kind: StoreKind, dataDir: string) =>
  Effect.map(Layer.build(storeLayers(kind, dataDir).both), (context) => ({
    tokens: Context.get(context, TokenStore),
    keys: Context.get(context, KeyStorage)
  }))

/** Both stores' locks of `key`, the file store's first. */
const lockBoth = (
  key: TokenKey,
  stores: ReadonlyArray<{ readonly kind: StoreKind; readonly tokens: TokenStoreShape }>
): Effect.Effect<void, StoreError, Scope.Scope> =>
  Effect.forEach(
    [...stores].sort((a, b) => STORE_KINDS.indexOf(a.kind) - STORE_KINDS.indexOf(b.kind)),
    (store) => store.tokens.lock(key),
    { discard: true }
  )

export const copyCommand = Command.make(
  "copy",
  {
    dataDir: shared.dataDir,
    from: Options.choice("from", STORE_KINDS).pipe(Options.withDescription("the store to copy from")),
    to: Options.choice("to", STORE_KINDS).pipe(Options.withDescription("the store to copy into")),
    move: Options.boolean("move").pipe(
      Options.withDescription("remove each token and key from the source once its copy is verified")
    )
  },
  (flags) =>
    Effect.scoped(
      Effect.gen(function* () {
        if (flags.from === flags.to) {
          return yield* new UsageError({
            reason: "SameStore",
            subject: "--from and --to",
            detail: flags.from
          })
        }
        const source: Stores = yield* open(flags.from, flags.dataDir)
        const target: Stores = yield* open(flags.to, flags.dataDir)
        // A second opening of the target, with nothing in memory: what it reads back is what was stored.
        const check: Stores = yield* open(flags.to, flags.dataDir)
        const done = flags.move ? "moved" : "copied"
        let tokens = 0
        let keys = 0

        for (const provider of yield* source.tokens.listProviders()) {
          for (const bucket of yield* source.tokens.listBuckets(provider)) {
            const key = { provider, bucket }
            const what = `${provider}:${bucket}`
            const copied = yield* Effect.scoped(
              Effect.gen(function* () {
                yield* lockBoth(key, [
                  { kind: flags.from, tokens: source.tokens },
                  { kind: flags.to, tokens: target.tokens }
                ])
                const token = yield* source.tokens.getLatest(key)
                if (token === undefined) return false
                yield* target.tokens.save(key, token)
                const back = yield* check.tokens.getLatest(key)
                if (!isDeepStrictEqual(back, token))
                  return yield* new CopyNotVerified({ kind: "token", what })
                if (flags.move) yield* source.tokens.remove(key)
                return true
              })
            )
            if (!copied) continue
            tokens++
            yield* Console.error(`${done} token ${what}`)
          }
        }

        for (const name of yield* source.keys.list()) {
          const value = yield* source.keys.get(name)
          if (value === undefined) continue
          yield* target.keys.set(name, value)
          if ((yield* check.keys.get(name)) !== value)
            return yield* new CopyNotVerified({ kind: "key", what: name })
          if (flags.move) yield* source.keys.remove(name)
          keys++
          yield* Console.error(`${done} key ${name}`)
        }
        yield* Console.error(
          `${done} ${tokens} token${tokens === 1 ? "" : "s"} and ${keys} key${keys === 1 ? "" : "s"} from the ${flags.from} store to the ${flags.to} store`
        )
      })
    )
).pipe(
  Command.withDescription(
    "copy every token and key from one store to the other, verifying each copy; --move removes them from the source"
  )
)

export const storeCommand = Command.make("store").pipe(
  Command.withDescription("move credentials between the file store and the OS keyring"),
  Command.withSubcommands([copyCommand])
)
