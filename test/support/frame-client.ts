import * as net from "node:net"
import { encodeFrame, FrameDecoder } from "../../src/protocol/frame.js"

// biome-ignore lint/suspicious/noExplicitAny: test helper reads arbitrary response JSON
export type Json = any

/**
 * A raw protocol client for tests: real Unix socket, real frames, and helpers
 * to wait (in real time, with generous bounds) for the next frame or the close.
 */
export class FrameClient {
  private readonly decoder = new FrameDecoder(1 << 30)
  private readonly frames: Array<Json> = []
  private waiters: Array<() => void> = []
  private nextId = 0
  /** The protocol version requests are sent with: the one the last accepted handshake settled on. */
  version = 1
  closed = false
  private readonly closedPromise: Promise<void>

  private constructor(readonly socket: net.Socket) {
    socket.on("data", (chunk: Buffer) => {
      this.decoder.push(chunk)
      for (let step = this.decoder.next(); step._tag === "Frame"; step = this.decoder.next()) {
        this.frames.push(JSON.parse(step.payload.toString("utf8")))
      }
      this.wake()
    })
    socket.on("error", () => {})
    this.closedPromise = new Promise((resolve) =>
      socket.on("close", () => {
        this.closed = true
        this.wake()
        resolve()
      })
    )
  }

  static connect(path: string): Promise<FrameClient> {
    return new Promise((resolve, reject) => {
      const socket = net.createConnection(path)
      socket.once("connect", () => resolve(new FrameClient(socket)))
      socket.once("error", reject)
    })
  }

  /** Connects and completes the handshake (by default offering version 1 only). */
  static async open(path: string, handshake?: Json): Promise<FrameClient> {
    const client = await FrameClient.connect(path)
    const reply = await client.handshake(handshake)
    if (reply.ok !== true) throw new Error(`handshake refused: ${JSON.stringify(reply)}`)
    return client
  }

  private wake(): void {
    const waiters = this.waiters
    this.waiters = []
    for (const wake of waiters) wake()
  }

  sendRaw(bytes: Buffer | string): void {
    this.socket.write(bytes)
  }

  send(message: unknown): void {
    this.socket.write(encodeFrame(typeof message === "string" ? message : JSON.stringify(message)))
  }

  async handshake(payload: Json = { minVersion: 1, maxVersion: 1 }): Promise<Json> {
    this.send({ v: 1, op: "handshake", payload })
    const reply = await this.nextFrame()
    if (reply.ok === true) this.version = reply.data.version
    return reply
  }

  /** Sends a request and waits for the answer carrying its id. */
  async request(op: string, payload?: Json, id = `r${++this.nextId}`): Promise<Json> {
    const v = this.version
    this.send(payload === undefined ? { v, id, op } : { v, id, op, payload })
    return this.frameWhere((frame) => frame.id === id)
  }

  /** The next frame in arrival order. */
  nextFrame(timeoutMs = 5_000): Promise<Json> {
    return this.frameWhere(() => true, timeoutMs)
  }

  async frameWhere(match: (frame: Json) => boolean, timeoutMs = 5_000): Promise<Json> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const index = this.frames.findIndex(match)
      if (index >= 0) return this.frames.splice(index, 1)[0]
      if (this.closed) throw new Error("connection closed before the expected frame arrived")
      const left = deadline - Date.now()
      if (left <= 0) throw new Error("timed out waiting for a frame")
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        this.waiters.push(() => {
          clearTimeout(timer)
          resolve()
        })
      })
    }
  }

  /** Frames received and not yet taken. */
  get pending(): ReadonlyArray<Json> {
    return this.frames
  }

  /** Resolves when the server has closed the connection; rejects after `timeoutMs` of real time. */
  waitClosed(timeoutMs = 5_000): Promise<void> {
    return Promise.race([
      this.closedPromise,
      new Promise<void>((_, reject) =>
        setTimeout(() => reject(new Error("connection still open")), timeoutMs).unref()
      )
    ])
  }

  close(): void {
    this.socket.destroy()
  }
}
