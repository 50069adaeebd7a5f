import type * as net from "node:net"
import type * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import { InvalidRequest, type ProxyError } from "../../errors/errors.js"
import { AdminPayloads, type AdminRequest } from "../../protocol/admin.js"
import { PROTOCOL_VERSIONS } from "../../protocol/limits.js"
import { makeCapabilityGate } from "../../services/CapabilityGate.js"
import { ConnectionInput } from "../connection-input.js"
import { ConnectionOutput } from "../connection-output.js"
import type { DeadlineWatch, Expirable } from "../deadline-watch.js"
import { readHandshake } from "../read-handshake.js"
import { makeFrameReader, type RequestReader } from "../read-request.js"
import { failureOf, handshakeAccepted, handshakeRefused, replyTo } from "../replies.js"

/** What every admin connection of one server shares. */
export interface AdminContext {
  readonly handle: (request: AdminRequest) => Effect.Effect<string, ProxyError>
  readonly fork: <A, E>(effect: Effect.Effect<A, E>) => Fiber.RuntimeFiber<A, E>
  readonly deadlines: DeadlineWatch
  readonly onClosed: (connection: AdminConnection) => void
}

/** Bytes an admin connection may hold unhandled; its requests are small. */
const MAX_BUFFERED_BYTES = 256 * 1024
/** Requests of one admin connection running at once; past it its reads pause. */
const MAX_IN_FLIGHT = 4
/** The handshake, and a started frame, must complete within this long. */
const DEADLINE_MS = 5_000

/** The admin socket needs no capability token: it is the host user's own, in the data directory. */
const NO_TOKEN = makeCapabilityGate(undefined)
const FRAME_TOO_LARGE = new InvalidRequest({ reason: "FrameTooLarge" })
const NOT_HANDSHAKEN = -1

/**
 * One connection to the admin socket: the sandbox socket's framing,
 * handshake and request checks (PROTOCOL.md §3-§5, §14) with the admin
 * operations only. It is not the hot path: every request runs as a fiber.
 */
export class AdminConnection implements Expirable {
  private readonly input = new ConnectionInput(MAX_BUFFERED_BYTES)
  private readonly out: ConnectionOutput
  private version = NOT_HANDSHAKEN
  private read: RequestReader<AdminRequest> | undefined
  private inFlight = 0
  private closed = false
  deadline: number

  constructor(
    private readonly socket: net.Socket,
    private readonly ctx: AdminContext
  ) {
    this.out = new ConnectionOutput(socket)
    this.deadline = ctx.deadlines.now() + DEADLINE_MS
    ctx.deadlines.watch(this)
    socket.on("data", (chunk: Buffer) => this.onData(chunk))
    socket.on("drain", () => this.pump())
    socket.on("error", () => {})
    socket.on("close", () => this.onClose())
    socket.resume()
  }

  expire(): void {
    this.destroy()
  }

  destroy(): void {
    if (this.closed) return
    this.closed = true
    this.ctx.deadlines.unwatch(this)
    this.socket.destroy()
  }

  private onClose(): void {
    this.closed = true
    this.ctx.deadlines.unwatch(this)
    this.ctx.onClosed(this)
  }

  private onData(chunk: Buffer): void {
    if (this.closed) return
    if (this.input.push(chunk)) this.pump()
    else this.destroy()
  }

  private pump(): void {
    while (!this.closed && this.inFlight < MAX_IN_FLIGHT && !this.out.blocked) {
      const step = this.input.next()
      if (step._tag === "NeedMore") break
      if (step._tag === "Oversize") {
        this.out.add(replyTo(Math.max(this.version, 1), undefined, Either.left(FRAME_TOO_LARGE)))
        this.out.flush()
        this.socket.destroySoon()
        this.closed = true
        return
      }
      if (this.version === NOT_HANDSHAKEN) this.onHandshake(step.payload)
      else this.onRequest(step.payload)
    }
    if (this.closed) return
    this.out.flush()
    if (this.input.trackPartialFrame(this.version !== NOT_HANDSHAKEN, () => this.ctx.deadlines.now())) {
      this.deadline = (this.input.partialSince ?? 0) + DEADLINE_MS
      this.ctx.deadlines.watch(this)
    } else if (this.version !== NOT_HANDSHAKEN) {
      this.ctx.deadlines.unwatch(this)
    }
    if (this.inFlight >= MAX_IN_FLIGHT || this.out.blocked) this.socket.pause()
    else this.socket.resume()
  }

  private onHandshake(bytes: Buffer): void {
    const read = readHandshake(bytes, PROTOCOL_VERSIONS, NO_TOKEN)
    if (read._tag !== "Accepted") {
      if (read._tag === "Refused") this.out.add(handshakeRefused(read.error))
      this.out.flush()
      this.socket.destroySoon()
      this.closed = true
      return
    }
    this.version = read.version
    this.read = makeFrameReader<AdminRequest>(read.version, AdminPayloads)
    this.out.add(handshakeAccepted(read.version))
  }

  private onRequest(bytes: Buffer): void {
    const version = this.version
    const frame = this.read?.(bytes, () => 0)
    if (frame === undefined) return
    if (frame._tag === "Refused") {
      this.out.add(replyTo(version, frame.id, Either.left(frame.error)))
      return
    }
    const { id } = frame.request
    this.inFlight++
    const fiber = this.ctx.fork(this.ctx.handle(frame.request))
    fiber.addObserver((exit) => {
      this.inFlight--
      if (this.closed) return
      this.out.add(
        replyTo(
          version,
          id,
          Exit.isSuccess(exit) ? Either.right(exit.value) : Either.left(failureOf(exit.cause))
        )
      )
      this.pump()
    })
  }
}
