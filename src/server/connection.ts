import type * as net from "node:net"
import * as Cause from "effect/Cause"
import type * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import {
  HandlerDefect,
  InvalidRequest,
  type ProxyError,
  RateLimited,
  ResponseTooLarge,
  Unauthorized,
  UnknownVersion
} from "../errors/errors.js"
import { toWireError } from "../errors/wire-error.js"
import { isUsableId } from "../protocol/envelope.js"
import { FrameBatch, FrameDecoder } from "../protocol/frame.js"
import { HandshakeFrame } from "../protocol/handshake.js"
import { PROTOCOL_VERSION } from "../protocol/limits.js"
import { isOperation } from "../protocol/operations.js"
import { describeParseIssue } from "../protocol/parse-issue.js"
import { failureJson, handshakeFailureJson, handshakeOkJson, successJson } from "../protocol/responses.js"
import type { AuditLogShape } from "../services/AuditLog.js"
import type { CapabilityGateShape } from "../services/CapabilityGate.js"
import type { ConnectionRateLimit } from "../services/RateLimiter.js"
import type { DeadlineWatch, Expirable } from "./deadline-watch.js"
import type { AuditFields, Operations } from "./operations.js"
import type { RejectReason, ServerStatus } from "./ServerStatus.js"

/** What every connection of one server shares. */
export interface ConnectionContext {
  readonly operations: Operations
  readonly audit: AuditLogShape
  readonly capability: CapabilityGateShape
  readonly status: ServerStatus
  readonly deadlines: DeadlineWatch
  readonly fork: <A, E>(effect: Effect.Effect<A, E>) => Fiber.RuntimeFiber<A, E>
  readonly maxFrameBytes: number
  readonly maxInFlight: number
  readonly maxFramesPerRead: number
  readonly maxBufferedBytes: number
  readonly handshakeTimeoutMs: number
  readonly partialFrameTimeoutMs: number
  readonly onClosed: (connection: Connection) => void
}

const decodeHandshake = Schema.decodeUnknownEither(HandshakeFrame)

const NOT_AN_OBJECT = new InvalidRequest({ reason: "frame is not a JSON object" })
const UNUSABLE_ID = new InvalidRequest({ reason: "id must be a non-empty string of at most 128 characters" })
const UNKNOWN_OPERATION = new InvalidRequest({ reason: "op is not a known operation" })
const FRAME_TOO_LARGE = new InvalidRequest({ reason: "frame too large" })
/** Collected answers are written once they reach this size, even in the middle of a read. */
const FLUSH_AT_BYTES = 64 * 1024
const WRONG_CAPABILITY = new Unauthorized({ reason: "capability token missing or wrong" })

type JsonObject = Record<string, unknown>

const parseJsonObject = (bytes: Buffer): JsonObject | undefined => {
  let value: unknown
  try {
    value = JSON.parse(bytes.toString("utf8"))
  } catch {
    return undefined
  }
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? (value as JsonObject)
    : undefined
}

/**
 * One accepted, peer-checked connection: a small state machine driven by
 * socket events. Frames are cut synchronously as bytes arrive; the handshake,
 * then per request the rate limit, envelope and payload schema, policy and
 * handler (PROTOCOL.md §14 order). Results that are already complete are
 * answered inline; the rest run as fibers in the server's set. Reads pause
 * while too many requests are in flight, while the peer is not reading its
 * answers, and for a turn of the event loop after `maxFramesPerRead` frames.
 */
export class Connection implements Expirable {
  private readonly decoder: FrameDecoder
  private readonly out = new FrameBatch()
  /** While set, answers are collected and written together when the read has been handled. */
  private batching = false
  private handshaken = false
  private closed = false
  private draining = false
  private peerEnded = false
  private writeBlocked = false
  private yielding = false
  private inFlight = 0
  /** Requests of this connection still running as fibers; interrupted when the connection closes. */
  private readonly running = new Set<Fiber.RuntimeFiber<string, ProxyError>>()
  /** Limits that only pause a connection are logged once per connection, not every time they bite. */
  private loggedInFlightLimit = false
  private loggedFramesPerRead = false
  private readonly handshakeDeadline: number
  private partialSince = -1
  /** Set once the connection is closing after its last answers: when to give up waiting for them to be taken. */
  private lingerUntil = -1

  constructor(
    private readonly socket: net.Socket,
    private readonly ctx: ConnectionContext,
    private readonly rateLimit: ConnectionRateLimit
  ) {
    this.decoder = new FrameDecoder(ctx.maxFrameBytes)
    this.handshakeDeadline = ctx.deadlines.now() + ctx.handshakeTimeoutMs
    ctx.deadlines.watch(this)
    ctx.status.connectionsOpen++
    ctx.status.connectionsTotal++
    socket.on("data", (chunk: Buffer) => this.contained(() => this.onData(chunk)))
    socket.on("end", () => this.contained(() => this.onEnd()))
    socket.on("drain", () => this.contained(() => this.onDrain()))
    socket.on("error", () => {})
    socket.on("close", () => this.onClose())
    socket.resume()
  }

  /** The earliest pending deadline: handshake, or completion of a started frame. */
  get deadline(): number {
    if (this.lingerUntil >= 0) return this.lingerUntil
    const partial =
      this.partialSince < 0 ? Number.POSITIVE_INFINITY : this.partialSince + this.ctx.partialFrameTimeoutMs
    return Math.min(this.handshaken ? Number.POSITIVE_INFINITY : this.handshakeDeadline, partial)
  }

  expire(): void {
    if (this.lingerUntil >= 0) {
      // Its last answer was not taken in time (the peer does not read): close it hard.
      this.socket.destroy()
      return
    }
    if (this.closed) return
    this.reject(this.handshaken ? "partial_frame_timeout" : "handshake_timeout", "deadline passed; closing")
    this.destroy()
  }

  get requestsInFlight(): number {
    return this.inFlight
  }

  /** Shutdown: read no further frames; requests in flight still get their answers. */
  stopReading(): void {
    this.draining = true
    this.updateFlow()
  }

  destroy(): void {
    if (this.closed) return
    this.closed = true
    this.ctx.deadlines.unwatch(this)
    this.socket.destroy()
  }

  /** A bug in this code must cost one connection, never the server (the event callbacks run outside any fiber). */
  private contained(handle: () => void): void {
    try {
      handle()
    } catch (defect) {
      this.ctx.audit.event("Error", "connection handler failed; closing the connection", {
        cause: defect instanceof Error ? defect.message : String(defect)
      })
      this.reject("internal")
      this.destroy()
    }
  }

  private reject(reason: RejectReason, message?: string): void {
    this.ctx.status.reject(reason)
    if (message !== undefined) this.ctx.audit.event("Info", message, { reason })
  }

  private onData(chunk: Buffer): void {
    if (this.closed) return
    if (this.decoder.bufferedBytes + chunk.length > this.ctx.maxBufferedBytes) {
      this.ctx.audit.event("Warning", "connection buffered too many unprocessed bytes; closing", {
        limit: this.ctx.maxBufferedBytes
      })
      this.reject("buffer_cap")
      this.destroy()
      return
    }
    this.decoder.push(chunk)
    this.pump()
  }

  private onEnd(): void {
    this.peerEnded = true
    this.finishIfDone()
  }

  private onDrain(): void {
    this.writeBlocked = false
    this.pump()
  }

  private onClose(): void {
    this.closed = true
    this.ctx.status.connectionsOpen--
    this.ctx.deadlines.unwatch(this)
    this.ctx.onClosed(this)
    // Nobody is left to answer: stop the work (locks are released by the fibers' own finalizers).
    for (const fiber of this.running) fiber.unsafeInterruptAsFork(fiber.id())
  }

  /** Cuts and handles every complete frame that may be handled now. */
  private pump(): void {
    if (this.yielding) {
      this.flush()
      return
    }
    this.batching = true
    let frames = 0
    let waitingForBytes = false
    while (!this.closed && !this.draining && !this.writeBlocked && this.inFlight < this.ctx.maxInFlight) {
      if (frames === this.ctx.maxFramesPerRead) {
        if (!this.loggedFramesPerRead) {
          this.loggedFramesPerRead = true
          this.ctx.audit.event("Info", "frames per read at the limit; letting other connections go first", {
            limit: this.ctx.maxFramesPerRead
          })
        }
        this.yieldTurn()
        break
      }
      const step = this.decoder.next()
      if (step._tag === "NeedMore") {
        waitingForBytes = true
        break
      }
      if (step._tag === "Oversize") {
        this.ctx.audit.event("Warning", "frame length over the limit; closing", {
          length: step.length,
          limit: this.ctx.maxFrameBytes
        })
        this.reject("oversize_frame")
        this.send(failureJson(undefined, toWireError(FRAME_TOO_LARGE)))
        this.closeAfterWrites()
        break
      }
      frames++
      this.partialSince = -1
      if (this.handshaken) this.onRequestFrame(step.payload)
      else this.onHandshakeFrame(step.payload)
    }
    if (this.inFlight >= this.ctx.maxInFlight && !this.loggedInFlightLimit) {
      this.loggedInFlightLimit = true
      this.ctx.audit.event("Info", "requests in flight at the limit; pausing reads", {
        limit: this.ctx.maxInFlight
      })
    }
    this.batching = false
    this.flush()
    // Only a connection we are willing to read from can be late with its bytes.
    const mayRead =
      !this.draining && !this.writeBlocked && !this.yielding && this.inFlight < this.ctx.maxInFlight
    this.trackPartialFrame(waitingForBytes && mayRead)
    this.updateFlow()
    this.finishIfDone()
  }

  /** Lets other connections run before this one's next frames (fairness under floods of tiny frames). */
  private yieldTurn(): void {
    this.yielding = true
    setImmediate(() => {
      this.yielding = false
      this.contained(() => this.pump())
    })
  }

  /**
   * The partial-frame deadline runs only while the connection waits for the
   * peer's bytes. Complete frames the server itself holds back (requests in
   * flight at the limit, a peer not reading, a yielded turn) are not partial:
   * backpressure must never close a connection or drop its requests.
   */
  private trackPartialFrame(waitingForBytes: boolean): void {
    if (this.closed) return
    if (waitingForBytes && this.decoder.hasPartialFrame) {
      if (this.partialSince < 0) this.partialSince = this.ctx.deadlines.now()
      this.ctx.deadlines.watch(this)
    } else {
      this.partialSince = -1
      if (this.handshaken) this.ctx.deadlines.unwatch(this)
    }
  }

  /** Version range, then capability token (PROTOCOL.md §14); any failure answers and closes. */
  private onHandshakeFrame(bytes: Buffer): void {
    const message = parseJsonObject(bytes)
    if (message === undefined) {
      this.reject("bad_handshake", "first frame is not a JSON object; closing")
      this.destroy()
      return
    }
    const decoded = decodeHandshake(message)
    if (Either.isLeft(decoded)) {
      const reason = `handshake ${describeParseIssue(decoded.left.issue)}`
      this.refuseHandshake("bad_handshake", new InvalidRequest({ reason }))
      return
    }
    const { minVersion, maxVersion, capabilityToken } = decoded.right.payload
    if (minVersion > PROTOCOL_VERSION || maxVersion < PROTOCOL_VERSION) {
      this.refuseHandshake("unknown_version", new UnknownVersion({ minVersion, maxVersion }))
      return
    }
    if (!this.ctx.capability.admits(capabilityToken)) {
      this.refuseHandshake("capability_token", WRONG_CAPABILITY)
      return
    }
    this.handshaken = true
    this.send(handshakeOkJson(PROTOCOL_VERSION))
  }

  private refuseHandshake(reason: RejectReason, error: ProxyError): void {
    const wire = toWireError(error)
    this.ctx.status.reject(reason)
    this.ctx.audit.event("Info", "handshake refused; closing", { code: wire.code, reason })
    this.send(handshakeFailureJson(wire))
    this.closeAfterWrites()
  }

  private onRequestFrame(bytes: Buffer): void {
    const started = this.ctx.audit.requestsEnabled ? this.ctx.deadlines.now() : 0
    const message = parseJsonObject(bytes)
    const id = message !== undefined && isUsableId(message.id) ? message.id : undefined
    const op = message !== undefined && isOperation(message.op) ? message.op : "unknown"
    const retryAfter = this.rateLimit.take()
    if (retryAfter > 0) {
      this.refuse(id, op, new RateLimited({ retryAfter }), started)
      return
    }
    if (message === undefined) {
      this.refuse(undefined, op, NOT_AN_OBJECT, started)
      return
    }
    if (id === undefined) {
      this.refuse(undefined, op, UNUSABLE_ID, started)
      return
    }
    if (op === "unknown") {
      this.refuse(id, op, UNKNOWN_OPERATION, started)
      return
    }
    let request: ReturnType<Operations["prepare"]>
    try {
      request = this.ctx.operations.prepare(op, message)
    } catch (defect) {
      this.answer(id, op, {}, Exit.die(defect), started)
      return
    }
    if (Exit.isExit(request.result)) {
      this.answer(id, op, request.audit, request.result as Exit.Exit<string, ProxyError>, started)
      return
    }
    this.inFlight++
    const fiber = this.ctx.fork(request.result)
    this.running.add(fiber)
    fiber.addObserver((exit) => {
      this.running.delete(fiber)
      this.inFlight--
      this.contained(() => {
        this.batching = true
        this.answer(id, op, request.audit, exit, started)
        this.pump()
      })
    })
  }

  /** A request that failed before reaching a handler (rate limit, envelope). */
  private refuse(id: string | undefined, op: string, error: ProxyError, started: number): void {
    const wire = toWireError(error)
    this.finish(op, {}, wire.code, failureJson(id, wire), started)
  }

  private answer(
    id: string,
    op: string,
    audit: AuditFields,
    exit: Exit.Exit<string, ProxyError>,
    started: number
  ): void {
    if (Exit.isSuccess(exit)) {
      this.finish(op, audit, "ok", successJson(id, exit.value), started, id)
      return
    }
    const wire = toWireError(this.failureOf(exit.cause, op))
    this.finish(op, audit, wire.code, failureJson(id, wire), started)
  }

  /** Sends one answer (never one over the frame limit), counts it and writes its audit line. */
  private finish(
    op: string,
    audit: AuditFields,
    outcome: string,
    json: string,
    started: number,
    id?: string
  ): void {
    let reply = json
    let result = outcome
    let bytes = Buffer.byteLength(reply)
    if (bytes > this.ctx.maxFrameBytes) {
      const wire = toWireError(new ResponseTooLarge({ bytes }))
      result = wire.code
      reply = failureJson(id, wire)
      bytes = Buffer.byteLength(reply)
    }
    if (!this.closed) this.send(reply, bytes)
    this.ctx.status.request(op, result)
    if (this.ctx.audit.requestsEnabled) {
      this.ctx.audit.request({
        op,
        ...audit,
        outcome: result,
        durationMs: this.ctx.deadlines.now() - started
      })
    }
  }

  private failureOf(cause: Cause.Cause<ProxyError>, op: string): ProxyError {
    const failure = Cause.failureOption(cause)
    if (Option.isSome(failure)) {
      const error = failure.value
      if (error._tag === "StoreFailure" || error._tag === "StoreTimeout") {
        this.ctx.audit.event("Error", "store call failed", {
          op,
          error: error._tag,
          operation: error.operation
        })
      }
      return error
    }
    if (!Cause.isInterruptedOnly(cause)) {
      this.ctx.audit.event("Error", "request handler died", { op, cause: Cause.pretty(cause) })
    }
    return new HandlerDefect({ cause: Cause.squash(cause) })
  }

  private send(json: string, byteLength?: number): void {
    this.out.add(json, byteLength)
    // Large answers are written as they come, so a peer that stops reading is noticed within one read.
    if (!this.batching || this.out.size >= FLUSH_AT_BYTES) this.flush()
  }

  private flush(): void {
    const bytes = this.out.take()
    if (bytes !== undefined && !this.closed && !this.socket.write(bytes)) this.writeBlocked = true
  }

  /** Lets pending writes flush, then closes (after a refusal the peer gets its answer). */
  private closeAfterWrites(): void {
    if (this.closed) return
    this.flush()
    this.closed = true
    this.socket.destroySoon()
    // A peer that never reads would keep the socket (and its slot) forever: bound the wait.
    this.lingerUntil = this.ctx.deadlines.now() + this.ctx.partialFrameTimeoutMs
    this.ctx.deadlines.watch(this)
  }

  /** Reads flow only while the peer reads our answers, few enough requests are in flight and we are not yielding. */
  private updateFlow(): void {
    if (this.closed) return
    const mayRead =
      !this.draining && !this.writeBlocked && !this.yielding && this.inFlight < this.ctx.maxInFlight
    if (mayRead) {
      if (this.socket.isPaused()) this.socket.resume()
    } else if (!this.socket.isPaused()) {
      this.socket.pause()
    }
  }

  /** After the peer half-closed: answer what was received, then close. */
  private finishIfDone(): void {
    // Frames held back (peer not reading, a yielded turn, requests at the limit) are still to be answered.
    if (
      this.closed ||
      !this.peerEnded ||
      this.inFlight > 0 ||
      this.draining ||
      this.yielding ||
      this.writeBlocked
    )
      return
    this.closeAfterWrites()
  }
}
