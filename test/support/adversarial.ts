import * as net from "node:net"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import { encodeFrame, FrameDecoder } from "../../src/protocol/frame.js"
import type { StatusSnapshot } from "../../src/server/ServerStatus.js"
import { FrameClient, type Json } from "./frame-client.js"
import { poll } from "./until.js"

/**
 * Helpers for the adversarial tests (test/adversarial): a client that writes
 * anything and keeps every answer as raw text, an independent check of what
 * an answer may look like (written from PROTOCOL.md, not imported from the
 * server), and real-time waits with bounds.
 */

/** The error codes of PROTOCOL.md §11 (with §19's and §20's), copied from the contract rather than from the implementation. */
export const PROTOCOL_CODES = [
  "NOT_FOUND",
  "INVALID_REQUEST",
  "RATE_LIMITED",
  "UNAUTHORIZED",
  "INTERNAL_ERROR",
  "UNKNOWN_VERSION",
  "SESSION_NOT_FOUND",
  "SESSION_EXPIRED",
  "SESSION_ALREADY_USED",
  "EXCHANGE_FAILED",
  "PROVIDER_NOT_FOUND",
  "REAUTH_REQUIRED",
  "FORBIDDEN",
  "CANCELLED"
] as const

/** Largest frame payload either side may send (PROTOCOL.md §3). */
export const MAX_PAYLOAD = 65536

const Success = Schema.Struct({
  v: Schema.Literal(1, 2),
  id: Schema.optional(Schema.String),
  op: Schema.optional(Schema.Literal("handshake")),
  ok: Schema.Literal(true),
  data: Schema.Record({ key: Schema.String, value: Schema.Unknown })
})

const Failure = Schema.Struct({
  v: Schema.Literal(1, 2),
  id: Schema.optional(Schema.String),
  op: Schema.optional(Schema.Literal("handshake")),
  ok: Schema.Literal(false),
  code: Schema.Literal(...PROTOCOL_CODES),
  error: Schema.String,
  retryAfter: Schema.optional(Schema.Number.pipe(Schema.positive()))
})

/** Every answer of PROTOCOL.md §4/§5; fields beyond these are an error. */
const AnswerShape = Schema.Union(Success, Failure)
const decodeAnswer = Schema.decodeUnknownEither(AnswerShape, { onExcessProperty: "error" })

/** Lines of a JavaScript stack trace, or an error's own rendering. */
const STACK_TRACE = /\n? {4}at |Error:|\bat [\w.<>]+ \(|node:internal|\.ts:\d+|\.js:\d+/

const hasKeyDeep = (value: unknown, key: string, depth = 0): boolean => {
  if (depth > 64 || typeof value !== "object" || value === null) return false
  if (Array.isArray(value)) return value.some((item) => hasKeyDeep(item, key, depth + 1))
  return Object.keys(value).some(
    (k) => k === key || hasKeyDeep((value as Record<string, unknown>)[k], key, depth + 1)
  )
}

/**
 * What is wrong with one answer frame (empty when nothing is): not JSON, not
 * the §4/§5 shape, a code outside §11, `retryAfter` on anything but a rate
 * limit, a `refresh_token` field in the data, any of `forbidden` anywhere in
 * the bytes, or anything that looks like a stack trace outside the echoed id.
 */
export const answerProblems = (text: string, forbidden: ReadonlyArray<string>): Array<string> => {
  const problems: Array<string> = []
  let json: Json
  try {
    json = JSON.parse(text)
  } catch {
    return [`answer is not JSON: ${text.slice(0, 200)}`]
  }
  const decoded = decodeAnswer(json)
  if (Either.isLeft(decoded))
    problems.push(`answer does not have the protocol's shape: ${text.slice(0, 300)}`)
  if (json?.ok === false && json.retryAfter !== undefined && json.code !== "RATE_LIMITED") {
    problems.push(`retryAfter on a ${json.code} answer`)
  }
  if (json?.ok === true && hasKeyDeep(json.data, "refresh_token")) {
    problems.push("an answer's data carries a refresh_token field")
  }
  for (const secret of forbidden) {
    if (text.includes(secret)) problems.push(`answer contains a secret (${secret.slice(0, 6)}...)`)
  }
  if (typeof json === "object" && json !== null) {
    const { id: _echoed, ...rest } = json as Record<string, unknown>
    if (STACK_TRACE.test(JSON.stringify(rest))) problems.push(`answer looks like a stack trace: ${text}`)
  }
  return problems
}

/**
 * A client that sends arbitrary bytes and records every answer frame as
 * text. Frames over the protocol limit from the server are recorded as
 * violations instead of being buffered.
 */
export class RawClient {
  readonly answers: Array<string> = []
  readonly violations: Array<string> = []
  closed = false
  private readonly decoder = new FrameDecoder(MAX_PAYLOAD)
  private readonly closedPromise: Promise<void>

  private constructor(readonly socket: net.Socket) {
    socket.on("data", (chunk: Buffer) => {
      this.decoder.push(chunk)
      for (;;) {
        const step = this.decoder.next()
        if (step._tag === "NeedMore") break
        if (step._tag === "Oversize") {
          this.violations.push(`server sent a frame of ${step.length} bytes`)
          socket.destroy()
          break
        }
        this.answers.push(step.payload.toString("utf8"))
      }
    })
    socket.on("error", () => {})
    this.closedPromise = new Promise((resolve) =>
      socket.on("close", () => {
        this.closed = true
        resolve()
      })
    )
  }

  static connect(path: string): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = net.createConnection(path)
      socket.once("connect", () => resolve(new RawClient(socket)))
      socket.once("error", reject)
    })
  }

  write(bytes: Buffer | Uint8Array): void {
    if (!this.socket.destroyed) this.socket.write(bytes)
  }

  /** Writes the parts one by one, letting the event loop turn between them (separate reads on the server). */
  async writeParts(parts: ReadonlyArray<Uint8Array>): Promise<void> {
    for (const part of parts) {
      this.write(part)
      await new Promise((resolve) => setImmediate(resolve))
    }
  }

  sendJson(message: unknown): void {
    this.write(encodeFrame(JSON.stringify(message)))
  }

  /**
   * Half-closes (PROTOCOL.md §14: requests already received are answered,
   * then the server closes) and waits for the server's close, so every
   * answer the server will ever send has arrived when this resolves.
   */
  async finish(timeoutMs = 5_000): Promise<void> {
    if (!this.socket.destroyed) this.socket.end()
    await this.waitClosed(timeoutMs)
  }

  waitClosed(timeoutMs = 5_000): Promise<void> {
    let timer: NodeJS.Timeout | undefined
    return Promise.race([
      this.closedPromise,
      new Promise<void>((_, reject) => {
        timer = setTimeout(() => reject(new Error("the server did not close the connection")), timeoutMs)
      })
    ]).finally(() => clearTimeout(timer))
  }

  close(): void {
    this.socket.destroy()
  }
}

/** A real-time pause, for tests that act at random moments (never before a negative check). */
export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** Waits until the server counts exactly `open` open connections. */
export const waitForOpen = (status: () => StatusSnapshot, open: number, limitMs = 5_000): Promise<void> =>
  poll(status, (now) => now.connections.open === open, { limitMs, what: `${open} open connections` }).then(
    () => undefined
  )

/** Runs `make` for 0..n-1, at most `batch` at a time (keeps well inside the listen backlog). */
export const inBatches = async <A>(
  n: number,
  batch: number,
  make: (i: number) => Promise<A>
): Promise<A[]> => {
  const out: Array<A> = []
  for (let start = 0; start < n; start += batch) {
    const size = Math.min(batch, n - start)
    out.push(...(await Promise.all(Array.from({ length: size }, (_, k) => make(start + k)))))
  }
  return out
}

/** Connects `n` raw sockets that never send a byte. */
export const connectIdle = (path: string, n: number): Promise<FrameClient[]> =>
  inBatches(n, 50, () => FrameClient.connect(path))
