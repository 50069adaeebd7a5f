import * as Cause from "effect/Cause"
import type * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import type { StoreFailure } from "../../errors/errors.js"
import { STORE_REVALIDATE_MS } from "./store-cache.js"

/**
 * Listings kept for STORE_REVALIDATE_MS (so another process's change shows
 * within 1 s) and shared: while one listing of a key is being read, every
 * other request for it waits for that one instead of reading again. This
 * process's own writes drop what they change (`invalidate`). At most
 * `maxKeys` listings are kept.
 */
export interface ListingCache<K, A> {
  readonly get: (key: K) => Effect.Effect<A, StoreFailure>
  readonly invalidate: (key: K) => void
}

type Slot<A> =
  | { readonly _tag: "Ready"; readonly at: number; readonly value: A }
  | { readonly _tag: "Reading"; readonly done: Deferred.Deferred<A, StoreFailure> }

export const makeListingCache = <K, A>(
  clock: Clock.Clock,
  read: (key: K) => Effect.Effect<A, StoreFailure>,
  maxKeys = 1_024
): ListingCache<K, A> => {
  const slots = new Map<K, Slot<A>>()
  /** Bumped by `invalidate`, so a reading that started before a change does not store a stale result. */
  let generation = 0

  const get = (key: K): Effect.Effect<A, StoreFailure> =>
    Effect.suspend(() => {
      const now = clock.unsafeCurrentTimeMillis()
      const slot = slots.get(key)
      if (slot?._tag === "Ready" && now - slot.at >= 0 && now - slot.at < STORE_REVALIDATE_MS) {
        return Effect.succeed(slot.value)
      }
      if (slot?._tag === "Reading") {
        // A reading abandoned by its caller (interrupted) is taken over by the next caller.
        return Deferred.await(slot.done).pipe(
          Effect.catchAllCause((cause) =>
            Cause.isInterruptedOnly(cause) ? get(key) : Effect.failCause(cause)
          )
        )
      }
      const done = Deferred.unsafeMake<A, StoreFailure>(FiberId.none)
      const started = generation
      if (slots.size >= maxKeys && !slots.has(key)) {
        const oldest = slots.keys().next()
        if (oldest.done !== true) slots.delete(oldest.value)
      }
      const reading: Slot<A> = { _tag: "Reading", done }
      slots.set(key, reading)
      return read(key).pipe(
        Effect.onExit((exit) =>
          Effect.suspend(() => {
            if (slots.get(key) !== reading) return Deferred.done(done, exit)
            slots.delete(key)
            if (Exit.isSuccess(exit) && started === generation) {
              slots.set(key, { _tag: "Ready", at: now, value: exit.value })
            }
            return Deferred.done(done, exit)
          })
        )
      )
    })

  return {
    get,
    invalidate: (key) => {
      generation++
      // A reading under way may have missed the change: later callers start a new one.
      slots.delete(key)
    }
  }
}
