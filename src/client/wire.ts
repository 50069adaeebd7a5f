import * as net from "node:net"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import { encodeFrame, FrameDecoder } from "../protocol/frame.js"
import { MAX_FRAME_BYTES, maxFrameBytes, PROTOCOL_VERSIONS } from "../protocol/limits.js"
import { Response } from "../protocol/responses.js"
import { ConnectionLost, ProtocolViolation } from "./errors.js"

/** An answer frame, decoded with the protocol's response schema. */
export type Answer = typeof Response.Type

/** What ends a request besides its answer: the connection broke, or the proxy broke the protocol. */
export type WireFailure = ConnectionLost | ProtocolViolation

const decodeAnswer = Schema.decodeUnknownEither(Response)

/**
 * One socket to the proxy and its requests in flight. Every frame that
 * arrives is checked (size before allocation, JSON, the response schema);
 * anything else fails the whole connection with a `ProtocolViolation`,
 * handled here and never thrown inside a socket event.
 */
export class Wire {
  private readonly decoder = new FrameDecoder(MAX_FRAME_BYTES)
  readonly pending = new Map<string, Deferred.Deferred<Answer, WireFailure>>()
  private handshake: ((answer: Either.Either<Answer, WireFailure>) => void) | undefined
  /** Set once the handshake succeeded: from then on a close we did not ask for means the session is lost. */
  established = false
  /** The protocol version the handshake settled on: requests carry it, and it sets the frame limit. */
  version: number = PROTOCOL_VERSIONS.min
  closedByUs = false
  isClosed = false
  /** Why the connection was given up, when the proxy broke the protocol. */
  private violation: ProtocolViolation | undefined

  constructor(
    readonly socket: net.Socket,
    private readonly onLost: () => void
  ) {
    socket.on("data", (chunk: Buffer) => this.onData(chunk))
    socket.on("error", () => {})
    socket.on("close", () => this.onClose())
  }

  private onData(chunk: Buffer): void {
    if (this.violation !== undefined) return
    this.decoder.push(chunk)
    for (;;) {
      const step = this.decoder.next()
      if (step._tag === "NeedMore") return
      const answer =
        step._tag === "Oversize"
          ? Either.left(new ProtocolViolation({ reason: "OversizeFrame" }))
          : this.decode(step.payload)
      if (Either.isLeft(answer)) {
        this.giveUp(answer.left)
        return
      }
      this.dispatch(answer.right)
    }
  }

  private decode(bytes: Buffer): Either.Either<Answer, ProtocolViolation> {
    let json: unknown
    try {
      json = JSON.parse(bytes.toString("utf8"))
    } catch {
      return Either.left(new ProtocolViolation({ reason: "NotJson" }))
    }
    if (typeof json !== "object" || json === null || Array.isArray(json)) {
      return Either.left(new ProtocolViolation({ reason: "NotJson" }))
    }
    return Either.mapLeft(decodeAnswer(json), () => new ProtocolViolation({ reason: "NotAnAnswer" }))
  }

  private dispatch(answer: Answer): void {
    if (this.handshake !== undefined) {
      const resolve = this.handshake
      this.handshake = undefined
      resolve(Either.right(answer))
      return
    }
    if (answer.id === undefined) return
    const deferred = this.pending.get(answer.id)
    if (deferred === undefined) return
    this.pending.delete(answer.id)
    Deferred.unsafeDone(deferred, Effect.succeed(answer))
  }

  /** The proxy broke the protocol: every request waiting, and every later one, fails with why. */
  private giveUp(violation: ProtocolViolation): void {
    this.violation = violation
    this.socket.destroy()
  }

  private onClose(): void {
    this.isClosed = true
    const failure: WireFailure = this.violation ?? new ConnectionLost()
    this.handshake?.(Either.left(failure))
    this.handshake = undefined
    if (this.closedByUs || !this.established) return
    this.onLost()
    this.failPending(failure)
  }

  private failPending(failure: WireFailure): void {
    for (const deferred of this.pending.values()) Deferred.unsafeDone(deferred, Effect.fail(failure))
    this.pending.clear()
  }

  /**
   * Sends the handshake (every version this client speaks) and waits for its
   * answer (a failure if the socket closed first). An accepted handshake
   * settles the version; one the client does not speak is a protocol violation.
   */
  awaitHandshake(capabilityToken: string | undefined): Promise<Either.Either<Answer, WireFailure>> {
    return new Promise((resolve) => {
      this.handshake = (answer) => resolve(Either.flatMap(answer, (reply) => this.settleVersion(reply)))
      const payload = {
        minVersion: PROTOCOL_VERSIONS.min,
        maxVersion: PROTOCOL_VERSIONS.max,
        ...(capabilityToken === undefined ? {} : { capabilityToken })
      }
      this.socket.write(encodeFrame(JSON.stringify({ v: PROTOCOL_VERSIONS.max, op: "handshake", payload })))
    })
  }

  private settleVersion(reply: Answer): Either.Either<Answer, WireFailure> {
    if (!reply.ok) return Either.right(reply)
    const version = reply.data.version
    if (typeof version !== "number" || version < PROTOCOL_VERSIONS.min || version > PROTOCOL_VERSIONS.max) {
      return Either.left(new ProtocolViolation({ reason: "NotAnAnswer" }))
    }
    this.version = version
    this.decoder.setMaxPayload(maxFrameBytes(version))
    return Either.right(reply)
  }

  /** Sends one request of the settled version. */
  request(id: string, op: string, payload: Record<string, unknown>): void {
    this.send(JSON.stringify({ v: this.version, id, op, payload }))
  }

  /**
   * Asks the proxy to stop working on a request this client no longer waits
   * for (its deadline passed, or its caller gave up): `cancel`, from version
   * 2 on; the answer is not waited for.
   */
  cancel(targetId: string, id: string): void {
    if (this.version < 2 || this.isClosed || this.closedByUs) return
    this.request(id, "cancel", { targetId })
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
    this.failPending(new ConnectionLost())
  }
}

/** Connects to the proxy's socket. */
export const connectSocket = (socketPath: string): Promise<net.Socket> =>
  new Promise((resolve, reject) => {
    const socket = net.createConnection(socketPath)
    socket.once("connect", () => {
      socket.removeListener("error", reject)
      resolve(socket)
    })
    socket.once("error", reject)
  })
