import * as net from "node:net"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FiberHandle from "effect/FiberHandle"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import { encodeFrame, FrameDecoder } from "../protocol/frame.js"
import { PROTOCOL_VERSION } from "../protocol/limits.js"
import { resolveCapabilityToken } from "./capability-token.js"
import {
  ConnectionLost,
  type ProxyClientError,
  ProxyResponseError,
  ProxyUnavailable,
  RequestTimeout
} from "./errors.js"

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
  /** Sends one request; succeeds with the answer's `data`. */
  readonly request: (
    op: string,
    payload?: Record<string, unknown>
  ) => Effect.Effect<unknown, ProxyClientError>
}

export class ProxyClient extends Context.Tag("credproxy/ProxyClient")<ProxyClient, ProxyClientShape>() {}

type Answer = { readonly ok: true; readonly data: unknown } | ProxyFailure
interface ProxyFailure {
  readonly ok: false
  readonly code: string
  readonly error: string
  readonly retryAfter?: number
}

/** One socket and its requests in flight; replaced only after an idle close. */
class Wire {
  private readonly decoder = new FrameDecoder(Number.MAX_SAFE_INTEGER)
  readonly pending = new Map<string, Deferred.Deferred<Answer, ConnectionLost>>()
  private handshake: ((frame: Record<string, unknown> | undefined) => void) | undefined
  /** Set once the handshake succeeded: from then on a close we did not ask for means the session is lost. */
  established = false
  closedByUs = false
  isClosed = false

  constructor(
    readonly socket: net.Socket,
    private readonly onLost: () => void
  ) {
    socket.on("data", (chunk: Buffer) => {
      this.decoder.push(chunk)
      for (let step = this.decoder.next(); step._tag === "Frame"; step = this.decoder.next()) {
        this.dispatch(step.payload)
      }
    })
    socket.on("error", () => {})
    socket.on("close", () => {
      this.isClosed = true
      this.handshake?.(undefined)
      if (this.closedByUs || !this.established) return
      this.onLost()
      for (const deferred of this.pending.values())
        Deferred.unsafeDone(deferred, Effect.fail(new ConnectionLost()))
      this.pending.clear()
    })
  }

  private dispatch(bytes: Buffer): void {
    let frame: Record<string, unknown>
    try {
      frame = JSON.parse(bytes.toString("utf8"))
    } catch {
      return
    }
    if (this.handshake !== undefined) {
      const resolve = this.handshake
      this.handshake = undefined
      resolve(frame)
      return
    }
    const id = frame.id
    if (typeof id !== "string") return
    const deferred = this.pending.get(id)
    if (deferred === undefined) return
    this.pending.delete(id)
    Deferred.unsafeDone(deferred, Effect.succeed(frame as unknown as Answer))
  }

  /** Sends the handshake and waits for its answer (undefined if the socket closed first). */
  awaitHandshake(capabilityToken: string | undefined): Promise<Record<string, unknown> | undefined> {
    return new Promise((resolve) => {
      this.handshake = resolve
      const payload = {
        minVersion: PROTOCOL_VERSION,
        maxVersion: PROTOCOL_VERSION,
        ...(capabilityToken === undefined ? {} : { capabilityToken })
      }
      this.socket.write(encodeFrame(JSON.stringify({ v: PROTOCOL_VERSION, op: "handshake", payload })))
    })
  }

  send(json: string): void {
    this.socket.write(encodeFrame(json))
  }

  /** Keeps the process alive only while requests are in flight (an idle client must not hold a CLI open). */
  refWhileBusy(): void {
    if (this.pending.size > 0) this.socket.ref()
    else this.socket.unref()
  }

  close(): void {
    this.closedByUs = true
    this.socket.destroy()
    // Closed by us with requests still waiting (the client's scope ended): they end now, not at their deadline.
    for (const deferred of this.pending.values())
      Deferred.unsafeDone(deferred, Effect.fail(new ConnectionLost()))
    this.pending.clear()
  }
}

const connectSocket = (socketPath: string): Promise<net.Socket> =>
  new Promise((resolve, reject) => {
    const socket = net.createConnection(socketPath)
    socket.once("connect", () => {
      socket.removeListener("error", reject)
      resolve(socket)
    })
    socket.once("error", reject)
  })

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

    const unavailable = (cause: unknown) =>
      new ProxyUnavailable({ reason: cause instanceof Error ? cause.message : String(cause) })

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
                reason: `cannot read the capability token: ${unavailable(cause).reason}`
              })
          })
    )

    /** Connects and handshakes; an interruption (the request's deadline) closes the half-open socket. */
    const open: Effect.Effect<Wire, ProxyClientError> = Effect.gen(function* () {
      if (socketPath === undefined || socketPath === "") {
        return yield* new ProxyUnavailable({ reason: "no socket path: set LLXPRT_CREDENTIAL_SOCKET" })
      }
      const token = yield* capability
      const socket = yield* Effect.tryPromise({ try: () => connectSocket(socketPath), catch: unavailable })
      const candidate = new Wire(socket, () => {
        lost = true
        wire = undefined
      })
      const reply = yield* Effect.promise(() => candidate.awaitHandshake(token)).pipe(
        Effect.onInterrupt(() => Effect.sync(() => candidate.close()))
      )
      if (reply === undefined) {
        return yield* new ProxyUnavailable({ reason: "the proxy closed the connection during the handshake" })
      }
      if (reply.ok !== true) {
        candidate.close()
        return yield* new ProxyUnavailable({
          reason: `handshake refused: ${String(reply.error ?? "")}`,
          code: String(reply.code ?? "")
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
        const answer = yield* Deferred.make<Answer, ConnectionLost>()
        current.pending.set(id, answer)
        current.refWhileBusy()
        current.send(JSON.stringify({ v: PROTOCOL_VERSION, id, op, payload: payload ?? {} }))
        const reply = yield* Deferred.await(answer).pipe(Effect.ensuring(settle(current, id)))
        if (reply.ok) return reply.data
        return yield* new ProxyResponseError({
          op,
          code: reply.code,
          reason: reply.error,
          ...(reply.retryAfter === undefined ? {} : { retryAfter: reply.retryAfter })
        })
      })

    /** One request, connecting first if needed; the 30 s deadline covers all of it. */
    const request = (
      op: string,
      payload?: Record<string, unknown>
    ): Effect.Effect<unknown, ProxyClientError> =>
      exchange(op, payload).pipe(
        Effect.timeoutFail({ duration: CLIENT_REQUEST_TIMEOUT, onTimeout: () => new RequestTimeout({ op }) })
      )

    return { request }
  })

export const layer = (options: ProxyClientOptions = {}): Layer.Layer<ProxyClient> =>
  Layer.scoped(ProxyClient, make(options))
