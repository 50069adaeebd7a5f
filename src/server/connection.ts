import type * as net from "node:net"
import * as Either from "effect/Either"
import { InvalidRequest } from "../errors/errors.js"
import { maxFrameBytes, PROTOCOL_VERSIONS } from "../protocol/limits.js"
import type { ConnectionRateLimit } from "../services/RateLimiter.js"
import { callerIdentity } from "./caller-identity.js"
import type { ConnectionContext } from "./connection-context.js"
import { ConnectionInput } from "./connection-input.js"
import { ConnectionOutput } from "./connection-output.js"
import { ConnectionRequests, type Session } from "./connection-requests.js"
import type { Expirable } from "./deadline-watch.js"
import { PauseLog, ReadGate } from "./read-gate.js"
import { REJECTION_LOG, type RejectReason } from "./rejections.js"
import { handshakeAccepted, handshakeRefused, type Reply, replyTo } from "./replies.js"
import type { ConnectionView, PauseReason } from "./ServerStatus.js"

/**
 * Where a connection is in its life: waiting for the handshake (until its
 * deadline), open for requests of one protocol version, lingering (answered
 * and closing; the last bytes have until `until` to be taken), closed.
 */
type Phase =
  | { readonly _tag: "Handshaking"; readonly deadline: number }
  | { readonly _tag: "Open"; readonly session: Session }
  | { readonly _tag: "Lingering"; readonly until: number }
  | { readonly _tag: "Closed" }

const FRAME_TOO_LARGE = new InvalidRequest({ reason: "FrameTooLarge" })

/**
 * One accepted, peer-checked connection: a small state machine driven by
 * socket events, which owns flow control and nothing else. Frames are cut
 * synchronously as bytes arrive; the first goes to the handshake reader, the
 * rest to `ConnectionRequests`. Reads pause while its `ReadGate` holds them.
 */
export class Connection implements Expirable, ConnectionView {
  private phase: Phase
  private readonly input: ConnectionInput
  private readonly out: ConnectionOutput
  private readonly requests: ConnectionRequests
  /** The peer half-closed: what it sent is still answered, then the connection closes (§14). */
  private peerEnded = false
  private readonly gate: ReadGate
  private readonly pauses: PauseLog

  constructor(
    private readonly socket: net.Socket,
    private readonly ctx: ConnectionContext,
    rateLimit: ConnectionRateLimit,
    /** The peer's uid as the kernel reported it (undefined where it cannot be asked). */
    private readonly peerUid: number | undefined
  ) {
    this.phase = { _tag: "Handshaking", deadline: ctx.deadlines.now() + ctx.config.handshakeTimeoutMs }
    this.input = new ConnectionInput(ctx.config.maxBufferedBytes)
    this.out = new ConnectionOutput(socket)
    this.requests = new ConnectionRequests(ctx, rateLimit, {
      send: (reply, id) => this.send(reply, id),
      retract: (id, reply) => !this.closing && this.out.retract(id, reply),
      settled: () => this.pump(),
      contained: (handle) => this.contained(handle)
    })
    this.gate = new ReadGate(this.out, this.requests, ctx.config)
    this.pauses = new PauseLog(ctx.audit)
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

  get requestsInFlight(): number {
    return this.requests.inFlight
  }

  get heldAnswerBytes(): number {
    return this.closing ? 0 : this.out.heldBytes
  }

  /** It has sent part of a frame (a handshake, while it is handshaking) that is not complete yet. */
  get midFrame(): boolean {
    return this.input.partialSince !== undefined
  }

  get pausedBy(): PauseReason | undefined {
    const hold = this.closing ? undefined : this.gate.hold
    return hold === "yielding" ? undefined : hold
  }

  /** The earliest pending deadline: the handshake, the last answers' linger, or a started frame's completion. */
  get deadline(): number {
    if (this.phase._tag === "Lingering") return this.phase.until
    const since = this.input.partialSince
    const partial =
      since === undefined ? Number.POSITIVE_INFINITY : since + this.ctx.config.partialFrameTimeoutMs
    return this.phase._tag === "Handshaking" ? Math.min(this.phase.deadline, partial) : partial
  }

  expire(): void {
    if (this.phase._tag === "Lingering") {
      // Its last answer was not taken in time (the peer does not read): close it hard.
      this.socket.destroy()
    } else if (this.phase._tag !== "Closed") {
      const reason = this.phase._tag === "Handshaking" ? "handshake_timeout" : "partial_frame_timeout"
      this.closeRejected(reason)
    }
  }

  destroy(): void {
    if (this.phase._tag === "Closed") return
    this.phase = { _tag: "Closed" }
    this.ctx.deadlines.unwatch(this)
    this.socket.destroy()
  }

  private get closing(): boolean {
    return this.phase._tag === "Lingering" || this.phase._tag === "Closed"
  }

  /** The one condition for handling more frames (and so for reading more bytes). */
  private get mayRead(): boolean {
    return !this.closing && this.gate.hold === undefined
  }

  /** A bug in this code must cost one connection, never the server (the event callbacks run outside any fiber). */
  private contained(handle: () => void): void {
    try {
      handle()
    } catch (defect) {
      this.closeRejected("internal", { defect: defect instanceof Error ? defect.name : typeof defect })
    }
  }

  /** Counts and logs why the server closes this connection. */
  private logRejection(reason: RejectReason, fields: Readonly<Record<string, unknown>>): void {
    this.ctx.status.reject(reason)
    const { level, message } = REJECTION_LOG[reason]
    this.ctx.audit.event(level, message, { reason, ...fields })
  }

  /** Closes the connection at once for `reason`. */
  private closeRejected(reason: RejectReason, fields: Readonly<Record<string, unknown>> = {}): void {
    this.logRejection(reason, fields)
    this.destroy()
  }

  private onData(chunk: Buffer): void {
    if (this.closing) return
    if (this.input.push(chunk)) this.pump()
    else this.closeRejected("buffer_cap", { limit: this.input.bufferCap })
  }

  private onEnd(): void {
    this.peerEnded = true
    this.finishIfDone()
  }

  private onDrain(): void {
    this.out.drained()
    this.pump()
  }

  private onClose(): void {
    this.phase = { _tag: "Closed" }
    this.ctx.status.connectionsOpen--
    this.ctx.deadlines.unwatch(this)
    this.ctx.onClosed(this)
    this.requests.interruptAll()
  }

  /** Cuts and handles every complete frame that may be handled now, then writes the answers in one go. */
  private pump(): void {
    if (this.gate.yielding) {
      this.flush()
      return
    }
    let frames = 0
    let waitingForBytes = false
    while (this.mayRead) {
      if (frames === this.ctx.config.maxFramesPerRead) {
        this.pauses.once("framesPerRead", this.ctx.config.maxFramesPerRead)
        this.yieldTurn()
        break
      }
      const step = this.input.next()
      if (step._tag === "NeedMore") {
        waitingForBytes = true
        break
      }
      if (step._tag === "Oversize") {
        const version = this.phase._tag === "Open" ? this.phase.session.version : PROTOCOL_VERSIONS.min
        const reply = replyTo(version, undefined, Either.left(FRAME_TOO_LARGE))
        this.answerAndClose("oversize_frame", reply, { length: step.length, limit: this.input.maxPayload })
        break
      }
      frames++
      if (this.phase._tag === "Handshaking") this.onHandshakeFrame(step.payload)
      else if (this.phase._tag === "Open") this.requests.onFrame(this.phase.session, step.payload)
    }
    if (this.gate.hold === "inFlightLimit") {
      this.pauses.once("inFlight", this.ctx.config.maxInFlightPerConnection)
    }
    this.flush()
    // Only a connection we are willing to read from can be late with its bytes.
    this.trackPartialFrame(waitingForBytes && this.mayRead)
    this.updateFlow()
    this.finishIfDone()
  }

  /** Lets other connections run before this one's next frames (fairness under floods of tiny frames). */
  private yieldTurn(): void {
    this.gate.yielding = true
    setImmediate(() => {
      this.gate.yielding = false
      this.contained(() => this.pump())
    })
  }

  private trackPartialFrame(waitingForBytes: boolean): void {
    if (this.closing) return
    if (this.input.trackPartialFrame(waitingForBytes, () => this.ctx.deadlines.now()))
      this.ctx.deadlines.watch(this)
    else if (this.phase._tag !== "Handshaking") this.ctx.deadlines.unwatch(this)
  }

  private onHandshakeFrame(bytes: Buffer): void {
    const read = this.ctx.readHandshake(bytes)
    switch (read._tag) {
      case "Dropped":
        this.closeRejected("bad_handshake", { frame: "not a JSON object" })
        return
      case "Refused": {
        const reply = handshakeRefused(read.error)
        this.answerAndClose(read.reject, reply, { code: reply.outcome })
        return
      }
      case "Accepted":
        this.phase = {
          _tag: "Open",
          session: {
            version: read.version,
            read: this.ctx.readerFor(read.version),
            identity: callerIdentity(this.peerUid, read.credential)
          }
        }
        this.input.setMaxPayload(maxFrameBytes(read.version))
        this.ctx.onHandshaken(this)
        this.send(handshakeAccepted(read.version))
    }
  }

  private send(reply: Reply, id?: string): void {
    if (!this.closing) this.out.add(reply, id)
  }

  private flush(): void {
    if (!this.closing) this.out.flush()
  }

  /** Refuses with `reply` and closes once it is written. */
  private answerAndClose(reason: RejectReason, reply: Reply, fields: Record<string, unknown>): void {
    this.logRejection(reason, fields)
    this.send(reply)
    this.closeAfterWrites()
  }

  /** Lets pending writes flush, then closes (after a refusal the peer gets its answer). */
  private closeAfterWrites(): void {
    if (this.closing) return
    this.flush()
    // A peer that never reads would keep the socket (and its slot) forever: bound the wait.
    const until = this.ctx.deadlines.now() + this.ctx.config.partialFrameTimeoutMs
    this.phase = { _tag: "Lingering", until }
    this.socket.destroySoon()
    this.ctx.deadlines.watch(this)
  }

  /** Reads flow exactly while frames may be handled. */
  private updateFlow(): void {
    if (this.closing || this.mayRead === !this.socket.isPaused()) return
    if (this.mayRead) this.socket.resume()
    else this.socket.pause()
  }

  /**
   * After the peer half-closed: once every frame it sent is answered, close.
   * Frames still held back (requests at the limit, a yielded turn, a peer not
   * reading) keep it open until they are.
   */
  private finishIfDone(): void {
    if (!this.peerEnded || this.closing || this.requests.inFlight > 0) return
    if (this.gate.yielding || this.out.blocked) return
    this.closeAfterWrites()
  }
}
