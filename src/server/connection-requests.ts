import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import { HandlerDefect, type ProxyError } from "../errors/errors.js"
import { MAX_FRAME_BYTES } from "../protocol/limits.js"
import type { DecodedRequest } from "../protocol/operations.js"
import type { ConnectionRateLimit } from "../services/RateLimiter.js"
import type { ConnectionContext } from "./connection-context.js"
import type { Handled } from "./handled.js"
import type { RequestReader } from "./read-request.js"
import { failureOf, type Reply, replyTo } from "./replies.js"

/** What the connection does with this side's output. */
export interface RequestOutput {
  /** Sends an answer (the connection drops it when it is closing). */
  readonly send: (reply: Reply) => void
  /** A request that ran as a fiber has been answered: the connection may read again. */
  readonly settled: () => void
  /** Runs a callback of a fiber's observer so that a bug in it costs the connection, not the server. */
  readonly contained: (handle: () => void) => void
}

/**
 * The requests of one connection, from frame to answer: read (§14 checks),
 * handled (policy, handler), answered. This is where the fast path is
 * decided, and nowhere else: a handler's `Ready` answer is sent inline; only
 * `Run` work becomes a fiber (in the server's set), tracked here until it
 * is answered and interrupted when the connection closes. A fiber and an
 * `Effect.gen` per request cost ~7x in throughput (README, "Performance"), so
 * nothing that is already known starts one.
 */
export class ConnectionRequests {
  /** Requests still running as fibers. */
  private readonly running = new Set<Fiber.RuntimeFiber<string, ProxyError>>()

  constructor(
    private readonly ctx: ConnectionContext,
    private readonly rateLimit: ConnectionRateLimit,
    private readonly output: RequestOutput
  ) {}

  get inFlight(): number {
    return this.running.size
  }

  /** Handles one request frame of a connection that negotiated `read`'s version. */
  onFrame(read: RequestReader, bytes: Buffer): void {
    const started = this.ctx.requests.start()
    const frame = read(bytes, this.rateLimit.take)
    if (frame._tag === "Refused") {
      this.answer(frame.id, frame.op, undefined, Either.left(frame.error), started)
      return
    }
    const request = frame.request
    let handled: Handled
    try {
      handled = this.ctx.handle(request)
    } catch (defect) {
      const name = defect instanceof Error ? defect.name : typeof defect
      this.answer(request.id, request.op, request, Either.left(new HandlerDefect({ name })), started)
      return
    }
    if (handled._tag === "Ready") {
      this.answer(request.id, request.op, request, handled.result, started)
      return
    }
    const fiber = this.ctx.fork(handled.work)
    this.running.add(fiber)
    fiber.addObserver((exit) => {
      this.running.delete(fiber)
      this.output.contained(() => {
        const result = Exit.isSuccess(exit) ? Either.right(exit.value) : Either.left(failureOf(exit.cause))
        this.answer(request.id, request.op, request, result, started)
        this.output.settled()
      })
    })
  }

  /** Nobody is left to answer: stop the work (locks are released by the fibers' own finalizers). */
  interruptAll(): void {
    for (const fiber of this.running) fiber.unsafeInterruptAsFork(fiber.id())
  }

  /** Sends one request's answer (never one over the frame limit) and records it. */
  private answer(
    id: string | undefined,
    op: string,
    request: DecodedRequest | undefined,
    result: Either.Either<string, ProxyError>,
    started: number
  ): void {
    const reply = replyTo(id, result, MAX_FRAME_BYTES)
    this.output.send(reply)
    this.ctx.requests.record(
      op,
      request,
      reply.outcome,
      started,
      Either.isLeft(result) ? result.left : undefined
    )
  }
}
