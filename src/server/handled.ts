import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import type { ProxyError } from "../errors/errors.js"

/**
 * What a handler gives the connection for one request: an answer it can send
 * at once (`Ready`), or work to run (`Run`). The answer is the `data` object
 * as JSON. Only the connection decides how to run work (docs/ARCHITECTURE.md,
 * "The fast path"); handlers never fork.
 */
export type Handled =
  | { readonly _tag: "Ready"; readonly result: Either.Either<string, ProxyError> }
  | { readonly _tag: "Run"; readonly work: Effect.Effect<string, ProxyError> }

export const ready = (result: Either.Either<string, ProxyError>): Handled => ({ _tag: "Ready", result })

export const refuse = (error: ProxyError): Handled => ({ _tag: "Ready", result: Either.left(error) })

export const run = (work: Effect.Effect<string, ProxyError>): Handled => ({ _tag: "Run", work })

/** The work of a `Handled`, as an Effect (a ready answer is one already). */
export const toEffect = (handled: Handled): Effect.Effect<string, ProxyError> =>
  handled._tag === "Ready" ? handled.result : handled.work

/**
 * The fast path in one combinator: answers from what a store already holds
 * (`cached` is `Some`) without starting any work unless `answer` asks for
 * some, else runs `lookup` and answers from its result. `answer` is the same
 * in both cases.
 */
export const fromStore = <A>(
  cached: Option.Option<A>,
  lookup: () => Effect.Effect<A, ProxyError>,
  answer: (value: A) => Handled
): Handled =>
  Option.isSome(cached)
    ? answer(cached.value)
    : { _tag: "Run", work: Effect.flatMap(lookup(), (value) => toEffect(answer(value))) }
