import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"

/**
 * One exclusive permit per key, held until a scope closes: the in-process half
 * of a store's provider:bucket lock. A key's semaphore exists only while
 * someone holds or waits for it, so the map does not grow with every key ever
 * locked.
 */
export interface KeyedSemaphore {
  /** Waits (interruptibly) for the permit of `id`; it is given back when the scope closes. */
  readonly acquire: (id: string) => Effect.Effect<void, never, Scope.Scope>
  /** Keys currently held or waited for (for tests). */
  readonly size: () => number
}

interface Slot {
  readonly semaphore: Effect.Semaphore
  users: number
}

export const makeKeyedSemaphore = (): KeyedSemaphore => {
  const slots = new Map<string, Slot>()

  const enter = (id: string): Slot => {
    let slot = slots.get(id)
    if (slot === undefined) {
      slot = { semaphore: Effect.unsafeMakeSemaphore(1), users: 0 }
      slots.set(id, slot)
    }
    slot.users += 1
    return slot
  }

  const leave = (id: string, slot: Slot): Effect.Effect<void> =>
    Effect.sync(() => {
      slot.users -= 1
      if (slot.users === 0 && slots.get(id) === slot) slots.delete(id)
    })

  // Only the wait itself is interruptible; bookkeeping and the finalizer are
  // registered uninterruptibly, so a permit can neither leak nor be released twice.
  const acquire = (id: string): Effect.Effect<void, never, Scope.Scope> =>
    Effect.uninterruptibleMask((restore) =>
      Effect.suspend(() => {
        const slot = enter(id)
        return restore(slot.semaphore.take(1)).pipe(
          Effect.onInterrupt(() => leave(id, slot)),
          Effect.zipRight(
            Effect.addFinalizer(() => Effect.zipRight(slot.semaphore.release(1), leave(id, slot)))
          )
        )
      })
    )

  return { acquire, size: () => slots.size }
}

/** An unambiguous map key for provider:bucket (the length prefix keeps `a:b`/`c` and `a`/`b:c` apart). */
export const tokenKeyId = (key: { readonly provider: string; readonly bucket: string }): string =>
  `${key.provider.length}:${key.provider}:${key.bucket}`
