import * as net from "node:net"
import * as Deferred from "effect/Deferred"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import type * as Scope from "effect/Scope"
import { type Answer, Wire, type WireFailure } from "../../client/wire.js"
import { errorCode } from "../../errors/errors.js"

/**
 * The client's own connection code (`Wire`: framing, the answer schema, the
 * handshake) driven one step at a time, so each step of reaching the proxy
 * can be judged on its own. Every step is bounded; the socket is closed when
 * the scope ends.
 */

/** Why a step did not complete: a system error code, or no answer in time. */
export type StepFailure = { readonly _tag: "Code"; readonly code: string } | { readonly _tag: "Timeout" }

/** Connects to `socketPath`; the socket is destroyed when the scope closes. */
export const connect = (
  socketPath: string,
  within: Duration.DurationInput
): Effect.Effect<net.Socket, StepFailure, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<net.Socket, StepFailure>((resume) => {
      const socket = net.createConnection(socketPath)
      socket.once("connect", () => {
        socket.removeAllListeners("error")
        socket.on("error", () => {})
        resume(Effect.succeed(socket))
      })
      socket.once("error", (error) =>
        resume(Effect.fail({ _tag: "Code", code: errorCode(error) ?? "error" }))
      )
      return Effect.sync(() => socket.destroy())
    }).pipe(Effect.timeoutFail({ duration: within, onTimeout: (): StepFailure => ({ _tag: "Timeout" }) })),
    (socket) => Effect.sync(() => socket.destroy())
  )

/** Opens the wire on a connected socket; closed when the scope closes. */
export const wireOn = (socket: net.Socket): Effect.Effect<Wire, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => new Wire(socket, () => {})),
    (wire) => Effect.sync(() => wire.close())
  )

/** The handshake's answer (or why there is none); an accepted one makes the wire ready for requests. */
export const handshake = (
  wire: Wire,
  capabilityToken: string | undefined,
  within: Duration.DurationInput
): Effect.Effect<Either.Either<Answer, WireFailure>, StepFailure> =>
  Effect.promise(() => wire.awaitHandshake(capabilityToken)).pipe(
    Effect.tap((answer) =>
      Effect.sync(() => {
        if (Either.isRight(answer) && answer.right.ok) wire.established = true
      })
    ),
    Effect.timeoutFail({ duration: within, onTimeout: (): StepFailure => ({ _tag: "Timeout" }) })
  )

let nextId = 0

/** One request on a ready wire, and its answer. */
export const ask = (
  wire: Wire,
  op: string,
  payload: Record<string, unknown>,
  within: Duration.DurationInput
): Effect.Effect<Answer, WireFailure | StepFailure> =>
  Effect.gen(function* () {
    const id = `doctor-${++nextId}`
    const answer = yield* Deferred.make<Answer, WireFailure>()
    wire.pending.set(id, answer)
    wire.request(id, op, payload)
    return yield* Deferred.await(answer)
  }).pipe(Effect.timeoutFail({ duration: within, onTimeout: (): StepFailure => ({ _tag: "Timeout" }) }))
