import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as FiberHandle from "effect/FiberHandle"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import { errorCode } from "../errors/errors.js"
import { type DataOf, type Operation, OperationData, type PayloadOf } from "../protocol/operations.js"
import { resolveCapabilityToken } from "./capability-token.js"
import {
  ConnectionLost,
  ProtocolViolation,
  type ProxyClientError,
  ProxyResponseError,
  ProxyUnavailable,
  RequestTimeout
} from "./errors.js"
import { type Answer, connectSocket, Wire, type WireFailure } from "./wire.js"

/** Client-side timers of PROTOCOL.md §10. */
export const CLIENT_REQUEST_TIMEOUT = Duration.seconds(30)
export const CLIENT_IDLE_CLOSE = Duration.minutes(5)

export interface ProxyClientOptions {
  /** Default: `LLXPRT_CREDENTIAL_SOCKET`. */
  readonly socketPath?: string | undefined
  /** Default: read from `LLXPRT_CAPABILITY_FD` (or `LLXPRT_CAPABILITY_FILE`) when set. */
  readonly capabilityToken?: string | undefined
}

/**
 * The inner side's connection to the proxy: connects lazily on the first
 * request, keeps one connection, matches answers by id, gives each request
 * 30 s, closes itself after 5 min idle and reconnects (fresh handshake) on the
 * next request. A connection that breaks is not replaced: every pending and
 * later request fails with `ConnectionLost`.
 */
export interface ProxyClientShape {
  /** Sends one request; succeeds with the answer's `data`, as it came. */
  readonly request: (
    op: string,
    payload?: Record<string, unknown>
  ) => Effect.Effect<unknown, ProxyClientError>
  /** Sends one request of a known operation; its `data` is decoded with the operation's schema. */
  readonly call: <Op extends Operation>(
    op: Op,
    payload: PayloadOf<Op>
  ) => Effect.Effect<DataOf<Op>, ProxyClientError>
}

export class ProxyClient extends Context.Tag("credproxy/ProxyClient")<ProxyClient, ProxyClientShape>() {}

export const make = (options: ProxyClientOptions = {}): Effect.Effect<ProxyClientShape, never, Scope.Scope> =>
  Effect.gen(function* () {
    const socketPath = options.socketPath ?? process.env.LLXPRT_CREDENTIAL_SOCKET
    let capabilityToken: string | undefined
    let capabilityResolved = false
    let wire: Wire | undefined
    let lost = false
    let nextId = 0
    const connecting = yield* Effect.makeSemaphore(1)
    const idleTimer = yield* FiberHandle.make<void, never>()
    yield* Effect.addFinalizer(() => Effect.sync(() => wire?.close()))

    const unreachable = (socket: string) => (cause: unknown) => {
      const code = errorCode(cause)
      return new ProxyUnavailable({ reason: "Connect", socket, ...(code === undefined ? {} : { code }) })
    }

    /** The capability token, looked up once (an inherited descriptor can be read only once). */
    const capability: Effect.Effect<string | undefined, ProxyUnavailable> = Effect.suspend(() =>
      capabilityResolved
        ? Effect.succeed(capabilityToken)
        : Effect.try({
            try: () => {
              capabilityToken = resolveCapabilityToken(options.capabilityToken)
              capabilityResolved = true
              return capabilityToken
            },
            catch: (cause) =>
              new ProxyUnavailable({
                reason: "CapabilityToken",
                detail: cause instanceof Error ? cause.message : String(cause)
              })
          })
    )

    /** Connects and handshakes; an interruption (the request's deadline) closes the half-open socket. */
    const open: Effect.Effect<Wire, ProxyClientError> = Effect.gen(function* () {
      if (socketPath === undefined || socketPath === "") {
        return yield* new ProxyUnavailable({ reason: "NoSocket" })
      }
      const token = yield* capability
      const socket = yield* Effect.tryPromise({
        try: () => connectSocket(socketPath),
        catch: unreachable(socketPath)
      })
      const candidate = new Wire(socket, () => {
        lost = true
        wire = undefined
      })
      const handshake = yield* Effect.promise(() => candidate.awaitHandshake(token)).pipe(
        Effect.onInterrupt(() => Effect.sync(() => candidate.close()))
      )
      if (Either.isLeft(handshake)) {
        return yield* handshake.left._tag === "ConnectionLost"
          ? new ProxyUnavailable({ reason: "HandshakeClosed" })
          : handshake.left
      }
      const reply = handshake.right
      if (!reply.ok) {
        candidate.close()
        return yield* new ProxyUnavailable({
          reason: "HandshakeRefused",
          code: reply.code,
          detail: reply.error
        })
      }
      candidate.established = true
      if (candidate.isClosed) lost = true
      return candidate
    })

    /** The live connection, opened (once, even for concurrent first requests) when there is none. */
    const connection: Effect.Effect<Wire, ProxyClientError> = connecting.withPermits(1)(
      Effect.suspend(() => {
        if (lost) return Effect.fail(new ConnectionLost())
        if (wire !== undefined) return Effect.succeed(wire)
        return Effect.flatMap(open, (opened) => {
          if (lost || opened.isClosed) {
            lost = true
            return Effect.fail(new ConnectionLost())
          }
          wire = opened
          return Effect.succeed(opened)
        })
      })
    )

    const closeIdle = Effect.sync(() => {
      if (wire !== undefined && wire.pending.size === 0) {
        wire.close()
        wire = undefined
      }
    })

    const settle = (current: Wire, id: string) =>
      Effect.suspend(() => {
        current.pending.delete(id)
        current.refWhileBusy()
        return current.pending.size === 0
          ? // settle runs as a finalizer (uninterruptible); the timer must stay interruptible to be reset
            FiberHandle.run(
              idleTimer,
              Effect.interruptible(Effect.zipRight(Effect.sleep(CLIENT_IDLE_CLOSE), closeIdle))
            )
          : Effect.void
      })

    const exchange = (
      op: string,
      payload?: Record<string, unknown>
    ): Effect.Effect<unknown, ProxyClientError> =>
      Effect.gen(function* () {
        const current = yield* connection
        yield* FiberHandle.clear(idleTimer)
        if (current.isClosed || current.closedByUs) {
          // Closed while we looked away: by us (idle) means open a new one; by the proxy means lost.
          if (current.closedByUs) return yield* exchange(op, payload)
          return yield* new ConnectionLost()
        }
        const id = `c${++nextId}`
        const answer = yield* Deferred.make<Answer, WireFailure>()
        current.pending.set(id, answer)
        current.refWhileBusy()
        current.request(id, op, payload ?? {})
        const reply = yield* Deferred.await(answer).pipe(
          // Given up before the answer (the deadline, the caller): the proxy may stop the work too.
          Effect.onInterrupt(() => Effect.sync(() => current.cancel(id, `c${++nextId}`))),
          Effect.ensuring(settle(current, id))
        )
        if (reply.ok) return reply.data
        return yield* new ProxyResponseError({
          op,
          code: reply.code,
          reason: reply.error,
          ...(reply.retryAfter === undefined ? {} : { retryAfter: reply.retryAfter })
        })
      })

    const decoders = new Map<Operation, (data: unknown) => Either.Either<unknown, unknown>>()
    const decoderOf = (op: Operation) => {
      let decode = decoders.get(op)
      if (decode === undefined) {
        decode = Schema.decodeUnknownEither(OperationData[op] as Schema.Schema<unknown, unknown>)
        decoders.set(op, decode)
      }
      return decode
    }

    /** One request, connecting first if needed; the 30 s deadline covers all of it. */
    const request = (
      op: string,
      payload?: Record<string, unknown>
    ): Effect.Effect<unknown, ProxyClientError> =>
      exchange(op, payload).pipe(
        Effect.timeoutFail({ duration: CLIENT_REQUEST_TIMEOUT, onTimeout: () => new RequestTimeout({ op }) })
      )

    const call = <Op extends Operation>(op: Op, payload: PayloadOf<Op>) =>
      Effect.flatMap(request(op, payload as Record<string, unknown>), (data) =>
        Either.match(decoderOf(op)(data), {
          onLeft: () => Effect.fail(new ProtocolViolation({ reason: "UnexpectedData" })),
          onRight: (decoded) => Effect.succeed(decoded as DataOf<Op>)
        })
      )

    return { request, call }
  })

export const layer = (options: ProxyClientOptions = {}): Layer.Layer<ProxyClient> =>
  Layer.scoped(ProxyClient, make(options))
