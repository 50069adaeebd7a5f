import { FRAME_HEADER_BYTES, MAX_FRAME_BYTES } from "./limits.js"

/**
 * Length-prefixed framing (PROTOCOL.md §3): a 4-byte unsigned big-endian
 * length, then that many bytes of UTF-8 JSON.
 */
export const encodeFrame = (json: string): Buffer => {
  const length = Buffer.byteLength(json)
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + length)
  frame.writeUInt32BE(length, 0)
  frame.write(json, FRAME_HEADER_BYTES, "utf8")
  return frame
}

/** What `FrameDecoder.next` found in the bytes received so far. */
export type DecodeStep =
  | { readonly _tag: "Frame"; readonly payload: Buffer }
  | { readonly _tag: "NeedMore" }
  | { readonly _tag: "Oversize"; readonly length: number }

const NEED_MORE: DecodeStep = { _tag: "NeedMore" }

/**
 * Incremental frame decoder. Chunks are queued as they arrive and frames are
 * cut out on demand, so any split or coalescing of chunks works. The declared
 * length is checked against the limit before a payload buffer is allocated,
 * and bytes are copied only when a frame spans chunks (never the whole backlog
 * per chunk).
 */
export class FrameDecoder {
  private readonly chunks: Array<Buffer> = []
  private head = 0
  private buffered = 0
  private pendingLength = -1

  constructor(private maxPayload: number = MAX_FRAME_BYTES) {}

  /** Changes the largest payload accepted from now on (after a handshake settles on a version). */
  setMaxPayload(maxPayload: number): void {
    this.maxPayload = maxPayload
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return
    this.chunks.push(chunk)
    this.buffered += chunk.length
  }

  /** Bytes received but not yet returned as frames. */
  get bufferedBytes(): number {
    return this.buffered
  }

  /** True when part of a frame (a header byte, a whole header, or some payload) is waiting for the rest. */
  get hasPartialFrame(): boolean {
    return this.buffered > 0 || this.pendingLength >= 0
  }

  next(): DecodeStep {
    if (this.pendingLength < 0) {
      if (this.buffered < FRAME_HEADER_BYTES) return NEED_MORE
      const length = this.readHeader()
      if (length > this.maxPayload) return { _tag: "Oversize", length }
      this.pendingLength = length
    }
    if (this.buffered < this.pendingLength) return NEED_MORE
    const payload = this.take(this.pendingLength)
    this.pendingLength = -1
    return { _tag: "Frame", payload }
  }

  private readHeader(): number {
    const first = this.chunks[0]!
    if (first.length - this.head >= FRAME_HEADER_BYTES) {
      const length = first.readUInt32BE(this.head)
      this.consume(FRAME_HEADER_BYTES)
      return length
    }
    return this.take(FRAME_HEADER_BYTES).readUInt32BE(0)
  }

  /** Removes `n` bytes from the front; a view when they lie in one chunk, else one copy of just those bytes. */
  private take(n: number): Buffer {
    const first = this.chunks[0]
    if (n === 0 || first === undefined) return Buffer.alloc(0)
    if (first.length - this.head >= n) {
      const view = first.subarray(this.head, this.head + n)
      this.consume(n)
      return view
    }
    const out = Buffer.allocUnsafe(n)
    let written = 0
    while (written < n) {
      const chunk = this.chunks[0]!
      const count = Math.min(chunk.length - this.head, n - written)
      chunk.copy(out, written, this.head, this.head + count)
      written += count
      this.consume(count)
    }
    return out
  }

  private consume(n: number): void {
    this.head += n
    this.buffered -= n
    const first = this.chunks[0]
    if (first !== undefined && this.head === first.length) {
      this.chunks.shift()
      this.head = 0
    }
  }
}

/**
 * Answers collected while one read is handled, written as one buffer: one
 * `socket.write` per read instead of one per answer.
 */
export class FrameBatch {
  private readonly payloads: Array<string> = []
  private readonly lengths: Array<number> = []
  private total = 0

  add(json: string, byteLength: number = Buffer.byteLength(json)): void {
    this.payloads.push(json)
    this.lengths.push(byteLength)
    this.total += FRAME_HEADER_BYTES + byteLength
  }

  /** Puts another payload in place of the one at `index` (in the order added since the last `take`). */
  replace(index: number, json: string, byteLength: number = Buffer.byteLength(json)): void {
    const before = this.lengths[index]
    if (before === undefined) return
    this.payloads[index] = json
    this.lengths[index] = byteLength
    this.total += byteLength - before
  }

  /** Payloads added since the last `take`. */
  get count(): number {
    return this.payloads.length
  }

  /** Bytes waiting to be taken, headers included. */
  get size(): number {
    return this.total
  }

  /** Everything added since the last call, framed, or `undefined` when nothing was added. */
  take(): Buffer | undefined {
    if (this.payloads.length === 0) return undefined
    const out = Buffer.allocUnsafe(this.total)
    let offset = 0
    for (let i = 0; i < this.payloads.length; i++) {
      const length = this.lengths[i]!
      out.writeUInt32BE(length, offset)
      out.write(this.payloads[i]!, offset + FRAME_HEADER_BYTES, length, "utf8")
      offset += FRAME_HEADER_BYTES + length
    }
    this.payloads.length = 0
    this.lengths.length = 0
    this.total = 0
    return out
  }
}
