import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import { Cancelled, HandlerDefect, type ProxyError, Stopping } from "../errors/errors.js"
import type { DecodedRequest } from "../protocol/operations.js"
import { WireCode } from "../protocol/wire-codes.js"
import type { ConnectionRateLimit } from "../services/RateLimiter.js"
import type { ConnectionContext } from "./connection-context.js"
import type { Handled } from "./handled.js"
import type { RequestReader } from "./read-request.js"
import { failureOf, type Reply, replyTo } from "./replies.js"

/** What the connection does with this side's output. */
export interface RequestOutput {
  /** Sends an answer (the connection drops it when it is closing); with `id`, it may be retracted until written. */
  readonly send: (reply: Reply, id?: string) => void
  /** Replaces the answer to request `id` if it is not written yet (`ConnectionOutput.retract`). */
  readonly retract: (id: string, reply: Reply) => boolean
  /** A request that ran as a fiber has been answered: the connection may read again. */
  readonly settled: () => void
  /** Runs a callback of a fiber's observer so that a bug in it costs the connection, not the server. */
  readonly contained: (handle: () => void) => void
}

/** The protocol version a connection settled on, the reader of its requests, and who it is (`caller-identity.ts`). */
export interface Session {
  readonly version: number
  readonly read: RequestReader
  readonly identity: string
}

/** A request running as a fiber: what its answer needs, and whether `cancel` already answered it. */
interface Running {
  readonly request: DecodedRequest
  readonly started: number
  cancelled: boolean
}

const STOPPING = new Stopping()
const CANCELLED = new Cancelled()

/** A refusal of a restricted connection is logged at most this often per connection and op (§19). */
const FORBIDDEN_LOG_INTERVAL_MS = 1_000

/**
 * The requests of one connection, from frame to answer: read (§14 checks),
 * handled (policy, handler), answered. This is where the fast path is
 * decided, and nowhere else: a handler's `Ready` answer is sent inline; only
 * `Run` work becomes a fiber (in the server's set), tracked here until it
 * is answered, and interrupted when the connection closes. A fiber and an
 * `Effect.gen` per request cost ~7x in throughput (README, "Performance"), so
 * nothing that is already known starts one.
 *
 * `cancel` (§20) is answered here too, since it acts on this connection's
 * requests: a running one is answered `CANCELLED` at once and its fiber
 * interrupted (a store write, once begun, still completes). While the server
 * stops, every request is answered at once: "the proxy is stopping" (§21).
 */
export class ConnectionRequests {
  private readonly running = new Map<Fiber.RuntimeFiber<string, ProxyError>, Running>()
  /** When a refusal of each op was last logged (Clock ms). */
  private forbiddenLogged: Map<string, number> | undefined

  constructor(
    private readonly ctx: ConnectionContext,
    private readonly rateLimit: ConnectionRateLimit,
    private readonly output: RequestOutput
  ) {}

  get inFlight(): number {
    return this.running.size
  }

  /** Handles one request frame of a connection in `session`. */
  onFrame(session: Session, bytes: Buffer): void {
    const started = this.ctx.requests.start()
    const frame = session.read(bytes, this.rateLimit.take)
    if (frame._tag === "Refused") {
      this.answer(session.version, frame.id, frame.op, undefined, Either.left(frame.error), started)
      return
    }
    const request = frame.request
    if (this.ctx.stopping()) {
      this.answer(session.version, request.id, request.op, request, Either.left(STOPPING), started)
      return
    }
    if (request.op === "cancel") {
      const cancelled = this.cancel(session.version, request.payload.targetId)
      this.answer(
        session.version,
        request.id,
        request.op,
        request,
        Either.right(`{"cancelled":${cancelled}}`),
        started
      )
      return
    }
    let handled: Handled
    try {
      handled = this.ctx.handle(request, session.identity)
    } catch (defect) {
      const error = new HandlerDefect({ name: defect instanceof Error ? defect.name : typeof defect })
      this.answer(session.version, request.id, request.op, request, Either.left(error), started)
      return
    }
    if (handled._tag === "Ready") {
      this.answer(session.version, request.id, request.op, request, handled.result, started)
      return
    }
    const fiber = this.ctx.fork(handled.work)
    const entry: Running = { request, started, cancelled: false }
    this.running.set(fiber, entry)
    fiber.addObserver((exit) => {
      this.running.delete(fiber)
      this.output.contained(() => {
        if (!entry.cancelled) {
          const result = Exit.isSuccess(exit) ? Either.right(exit.value) : Either.left(failureOf(exit.cause))
          this.answer(session.version, request.id, request.op, request, result, entry.started)
        }
        this.output.settled()
      })
    })
  }

  /**
   * Answers every running request with id `targetId` `CANCELLED` and
   * interrupts it, or else replaces an answer to it that is not written yet
   * (it came inline in the same read); whether there was one.
   */
  private cancel(version: number, targetId: string): boolean {
    let found = false
    for (const [fiber, entry] of this.running) {
      if (entry.cancelled || entry.request.id !== targetId) continue
      found = true
      entry.cancelled = true
      this.answer(version, targetId, entry.request.op, entry.request, Either.left(CANCELLED), entry.started)
      fiber.unsafeInterruptAsFork(fiber.id())
    }
    return found || this.output.retract(targetId, replyTo(version, targetId, Either.left(CANCELLED)))
  }

  /** Nobody is left to answer: stop the work (locks are released by the fibers' own finalizers). */
  interruptAll(): void {
    for (const fiber of this.running.keys()) fiber.unsafeInterruptAsFork(fiber.id())
  }

  /** Sends one request's answer (never one over the frame limit) and records it. */
  private answer(
    version: number,
    id: string | undefined,
    op: string,
    request: DecodedRequest | undefined,
    result: Either.Either<string, ProxyError>,
    started: number
  ): void {
    const reply = replyTo(version, id, result)
    // Only a v2 connection can cancel; a `cancel`'s own answer and a `CANCELLED` stay as they are.
    const retractable = version > 1 && op !== "cancel" && reply.outcome !== WireCode.CANCELLED
    this.output.send(reply, retractable ? id : undefined)
    const error = Either.isLeft(result) ? result.left : undefined
    this.ctx.requests.record(op, request, reply.outcome, started, error)
    if (reply.outcome === WireCode.FORBIDDEN) this.logForbidden(op)
  }

  /** Each refusal is audited (§19), at most once a second per op on this connection. */
  private logForbidden(op: string): void {
    const now = this.ctx.deadlines.now()
    // Made on the first refusal: most connections never get one.
    this.forbiddenLogged ??= new Map()
    const last = this.forbiddenLogged.get(op)
    if (last !== undefined && now - last < FORBIDDEN_LOG_INTERVAL_MS) return
    this.forbiddenLogged.set(op, now)
    this.ctx.audit.event("Info", "request forbidden", { op, outcome: "forbidden" })
  }
}
