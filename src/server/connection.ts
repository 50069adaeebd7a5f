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
  UnknownVersion
} from "../errors/errors.js"
import { toWireError } from "../errors/wire-error.js"
import { isUsableId, RequestEnvelope } from "../protocol/envelope.js"
import { encodeFrame, FrameDecoder } from "../protocol/frame.js"
import { HandshakeFrame } from "../protocol/handshake.js"
import { PROTOCOL_VERSION } from "../protocol/limits.js"
import { isOperation } from "../protocol/operations.js"
import { describeParseIssue } from "../protocol/parse-issue.js"
import { failureJson, handshakeFailureJson, handshakeOkJson, successJson } from "../protocol/responses.js"
import type { AuditLogShape } from "../services/AuditLog.js"
import type { ConnectionRateLimit } from "../services/RateLimiter.js"
import type { DeadlineWatch, Expirable } from "./deadline-watch.js"
import type { AuditFields, Operations } from "./operations.js"

/** What every connection of one server shares. */
export interface ConnectionContext {
  readonly operations: Operations
  readonly audit: AuditLogShape
  readonly deadlines: DeadlineWatch
  readonly fork: <A, E>(effect: Effect.Effect<A, E>) => Fiber.RuntimeFiber<A, E>
  readonly maxFrameBytes: number
  readonly maxInFlight: number
  readonly handshakeTimeoutMs: number
  readonly partialFrameTimeoutMs: number
  readonly onClosed: (connection: Connection) => void
}

const decodeHandshake = Schema.decodeUnknownEither(HandshakeFrame)
const decodeEnvelope = Schema.decodeUnknownEither(RequestEnvelope)

const NOT_AN_OBJECT = new InvalidRequest({ reason: "frame is not a JSON object" })
const UNUSABLE_ID = new InvalidRequest({ reason: "id must be a non-empty string of at most 128 characters" })
const UNKNOWN_OPERATION = new InvalidRequest({ reason: "op is not a known operation" })

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
 * while too many requests are in flight or the peer is not reading replies.
 */
export class Connection implements Expirable {
  private readonly decoder: FrameDecoder
  private handshaken = false
  private closed = false
  private draining = false
  private peerEnded = false
  private writeBlocked = false
  private inFlight = 0
  private handshakeDeadline: number
  private partialSince = -1

  constructor(
    private readonly socket: net.Socket,
    private readonly ctx: ConnectionContext,
    private readonly rateLimit: ConnectionRateLimit
  ) {
    this.decoder = new FrameDecoder(ctx.maxFrameBytes)
    this.handshakeDeadline = ctx.deadlines.now() + ctx.handshakeTimeoutMs
    ctx.deadlines.watch(this)
    socket.on("data", (chunk: Buffer) => this.onData(chunk))
    socket.on("end", () => this.onEnd())
    socket.on("drain", () => this.onDrain())
    socket.on("error", () => {})
    socket.on("close", () => this.onClose())
    socket.resume()
  }

  /** The earliest pending deadline: handshake, or completion of a started frame. */
  get deadline(): number {
    const partial =
      this.partialSince < 0 ? Number.POSITIVE_INFINITY : this.partialSince + this.ctx.partialFrameTimeoutMs
    return Math.min(this.handshaken ? Number.POSITIVE_INFINITY : this.handshakeDeadline, partial)
  }

  expire(): void {
    if (this.closed) return
    this.ctx.audit.event(
      "Info",
      this.handshaken ? "partial frame timed out; closing" : "handshake timed out; closing"
    )
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

  private onData(chunk: Buffer): void {
    if (this.closed) return
    this.decoder.push(chunk)
    this.pump()
  }

  private onEnd(): void {
    this.peerEnded = true
    this.finishIfDone()
  }

  private onDrain(): void {
    this.writeBlocked = false
    this.updateFlow()
    this.pump()
  }

  private onClose(): void {
    this.closed = true
    this.ctx.deadlines.unwatch(this)
    this.ctx.onClosed(this)
  }

  /** Cuts and handles every complete frame that may be handled now. */
  private pump(): void {
    this.socket.cork()
    while (!this.closed && !this.draining && this.inFlight < this.ctx.maxInFlight) {
      const step = this.decoder.next()
      if (step._tag === "NeedMore") break
      if (step._tag === "Oversize") {
        this.ctx.audit.event("Warning", "frame length over the limit; closing", {
          length: step.length,
          limit: this.ctx.maxFrameBytes
        })
        this.send(failureJson(undefined, toWireError(new InvalidRequest({ reason: "frame too large" }))))
        this.closeAfterWrites()
        break
      }
      this.partialSince = -1
      if (this.handshaken) this.onRequestFrame(step.payload)
      else this.onHandshakeFrame(step.payload)
    }
    this.socket.uncork()
    this.trackPartialFrame()
    this.updateFlow()
    this.finishIfDone()
  }

  private trackPartialFrame(): void {
    if (this.closed) return
    if (this.decoder.hasPartialFrame) {
      if (this.partialSince < 0) this.partialSince = this.ctx.deadlines.now()
      this.ctx.deadlines.watch(this)
    } else {
      this.partialSince = -1
      if (this.handshaken) this.ctx.deadlines.unwatch(this)
    }
  }

  private onHandshakeFrame(bytes: Buffer): void {
    const message = parseJsonObject(bytes)
    if (message === undefined) {
      this.ctx.audit.event("Info", "first frame is not a JSON object; closing")
      this.destroy()
      return
    }
    const decoded = decodeHandshake(message)
    if (Either.isLeft(decoded)) {
      this.refuseHandshake(
        new InvalidRequest({ reason: `handshake ${describeParseIssue(decoded.left.issue)}` })
      )
      return
    }
    const { minVersion, maxVersion } = decoded.right.payload
    if (minVersion > PROTOCOL_VERSION || maxVersion < PROTOCOL_VERSION) {
      this.refuseHandshake(new UnknownVersion({ minVersion, maxVersion }))
      return
    }
    this.handshaken = true
    this.send(handshakeOkJson(PROTOCOL_VERSION))
  }

  private refuseHandshake(error: ProxyError): void {
    const wire = toWireError(error)
    this.ctx.audit.event("Info", "handshake refused; closing", { code: wire.code })
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
      this.reject(id, op, new RateLimited({ retryAfter }), started)
      return
    }
    if (message === undefined) {
      this.reject(undefined, op, NOT_AN_OBJECT, started)
      return
    }
    if (id === undefined) {
      this.reject(undefined, op, UNUSABLE_ID, started)
      return
    }
    const envelope = decodeEnvelope(message)
    if (Either.isLeft(envelope)) {
      this.reject(id, op, new InvalidRequest({ reason: describeParseIssue(envelope.left.issue) }), started)
      return
    }
    if (op === "unknown") {
      this.reject(id, op, UNKNOWN_OPERATION, started)
      return
    }
    const request = this.ctx.operations.prepare(op, envelope.right.payload)
    if (Exit.isExit(request.result)) {
      this.answer(id, op, request.audit, request.result as Exit.Exit<string, ProxyError>, started)
      return
    }
    this.inFlight++
    const fiber = this.ctx.fork(request.result)
    fiber.addObserver((exit) => {
      this.inFlight--
      this.answer(id, op, request.audit, exit, started)
      this.updateFlow()
      this.pump()
    })
  }

  /** A request that failed before reaching a handler (rate limit, envelope). */
  private reject(id: string | undefined, op: string, error: ProxyError, started: number): void {
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

  /** Sends one answer (never one over the frame limit) and writes its audit line. */
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
    const bytes = Buffer.byteLength(reply)
    if (bytes > this.ctx.maxFrameBytes) {
      const wire = toWireError(new ResponseTooLarge({ bytes }))
      result = wire.code
      reply = failureJson(id, wire)
    }
    if (!this.closed) this.send(reply)
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

  private send(json: string): void {
    if (!this.socket.write(encodeFrame(json))) this.writeBlocked = true
  }

  /** Lets pending writes flush, then closes (after a refusal the peer gets its answer). */
  private closeAfterWrites(): void {
    if (this.closed) return
    this.closed = true
    this.ctx.deadlines.unwatch(this)
    this.socket.destroySoon()
  }

  /** Reads flow only while the peer reads our replies and few enough requests are in flight. */
  private updateFlow(): void {
    if (this.closed) return
    const mayRead = !this.draining && !this.writeBlocked && this.inFlight < this.ctx.maxInFlight
    if (mayRead) {
      if (this.socket.isPaused()) this.socket.resume()
    } else if (!this.socket.isPaused()) {
      this.socket.pause()
    }
  }

  /** After the peer half-closed: answer what was received, then close. */
  private finishIfDone(): void {
    if (this.closed || !this.peerEnded || this.inFlight > 0 || this.draining) return
    this.closeAfterWrites()
  }
}
