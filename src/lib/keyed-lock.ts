import * as Effect from "effect/Effect"
import * as RcMap from "effect/RcMap"
import type * as Scope from "effect/Scope"

/**
 * One exclusive permit per key, held until a scope closes: the in-process
 * half of a store's provider:bucket lock. The semaphores live in an `RcMap`,
 * so a key's semaphore exists only while someone holds or waits for it.
 */
export interface KeyedLock {
  /** Waits (interruptibly) for the permit of `id`; it is given back when the scope closes. */
  readonly acquire: (id: string) => Effect.Effect<void, never, Scope.Scope>
}

export const make: Effect.Effect<KeyedLock, never, Scope.Scope> = Effect.map(
  RcMap.make({ lookup: (_id: string) => Effect.makeSemaphore(1) }),
  (semaphores) => ({
    // Only the wait is interruptible: a permit taken is always given back, and never twice.
    acquire: (id) =>
      Effect.flatMap(RcMap.get(semaphores, id), (semaphore) =>
        Effect.uninterruptibleMask((restore) =>
          Effect.zipRight(
            restore(semaphore.take(1)),
            Effect.addFinalizer(() => semaphore.release(1))
          )
        )
      )
  })
)

/** An unambiguous map key for provider:bucket (the length prefix keeps `a:b`/`c` and `a`/`b:c` apart). */
export const tokenKeyId = (key: { readonly provider: string; readonly bucket: string }): string =>
  `${key.provider.length}:${key.provider}:${key.bucket}`
