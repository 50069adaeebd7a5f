import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"

/**
 * Combinators that keep an already-completed result (an `Exit`, which is also
 * an Effect) completed, so the connection can answer it inline without forking
 * a fiber; anything still pending stays an ordinary Effect.
 */
const completed = <A, E>(self: Effect.Effect<A, E>): Exit.Exit<A, E> | undefined =>
  Exit.isExit(self) ? (self as Exit.Exit<A, E>) : undefined

export const mapInline = <A, B, E>(self: Effect.Effect<A, E>, f: (a: A) => B): Effect.Effect<B, E> => {
  const exit = completed(self)
  return exit === undefined ? Effect.map(self, f) : Exit.map(exit, f)
}

export const flatMapInline = <A, B, E, E2>(
  self: Effect.Effect<A, E>,
  f: (a: A) => Effect.Effect<B, E2>
): Effect.Effect<B, E | E2> => {
  const exit = completed(self)
  if (exit === undefined) return Effect.flatMap(self, f)
  return Exit.isSuccess(exit) ? f(exit.value) : (exit as Exit.Exit<never, E>)
}

/** Recovers from every failure with a fixed value (lists never fail on a store error). */
export const orElseSucceedInline = <A, E>(self: Effect.Effect<A, E>, fallback: A): Effect.Effect<A> => {
  const exit = completed(self)
  if (exit === undefined) return Effect.orElseSucceed(self, () => fallback)
  return Exit.isSuccess(exit) ? (exit as Exit.Exit<A>) : Exit.succeed(fallback)
}
