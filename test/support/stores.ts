import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { TokenStore, type TokenStoreShape } from "../../src/services/TokenStore.js"
import * as MemoryStores from "./memory-stores.js"

/** Counts every call that reaches the token store, to prove a refused request touches none. */
export interface StoreCalls {
  count: number
}

/**
 * In-memory stores whose token reads wait for `gate` (never opened: they hang),
 * for tests of deadlines and the shutdown drain; every call is counted.
 */
export const gatedStores = (gate: Deferred.Deferred<void>, calls: StoreCalls = { count: 0 }) =>
  Layer.merge(
    Layer.scoped(
      TokenStore,
      Effect.map(MemoryStores.makeTokenStore, (store): TokenStoreShape => {
        const counted =
          <Args extends Array<unknown>, R>(f: (...args: Args) => R) =>
          (...args: Args): R => {
            calls.count++
            return f(...args)
          }
        return {
          ...store,
          cached: () => Option.none(),
          get: counted((key) => Effect.zipRight(Deferred.await(gate), store.get(key))),
          getLatest: counted(store.getLatest),
          save: counted(store.save),
          remove: counted(store.remove),
          listBuckets: counted(store.listBuckets),
          lock: counted(store.lock)
        }
      })
    ),
    MemoryStores.keyStorageLayer
  )
