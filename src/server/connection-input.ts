import { type DecodeStep, FrameDecoder } from "../protocol/frame.js"
import { MAX_FRAME_BYTES } from "../protocol/limits.js"

/**
 * The bytes of one connection on their way in: cut into frames as they
 * arrive, with the cap on bytes received but not yet handled, and the start
 * of a frame that is only partly received (for its deadline).
 */
export class ConnectionInput {
  private readonly decoder = new FrameDecoder(MAX_FRAME_BYTES)
  /** The largest payload accepted now. */
  maxPayload = MAX_FRAME_BYTES
  /** When the frame now arriving began (Clock ms); undefined while no frame is partly received. */
  partialSince: number | undefined

  private maxBufferedBytes: number

  constructor(private readonly bufferLimit: number) {
    this.maxBufferedBytes = bufferLimit
  }

  /**
   * The frame limit of the version the handshake settled on. The buffer cap
   * grows by as much as frames did (version 2's 4 MiB), so a whole frame of
   * that version always fits.
   */
  setMaxPayload(maxPayload: number): void {
    this.maxPayload = maxPayload
    this.decoder.setMaxPayload(maxPayload)
    this.maxBufferedBytes = this.bufferLimit + Math.max(0, maxPayload - MAX_FRAME_BYTES)
  }

  /** The cap on bytes received and not yet handled. */
  get bufferCap(): number {
    return this.maxBufferedBytes
  }

  /** Takes a chunk; false (and nothing taken) when it would pass the cap. */
  push(chunk: Buffer): boolean {
    if (this.decoder.bufferedBytes + chunk.length > this.maxBufferedBytes) return false
    this.decoder.push(chunk)
    return true
  }

  next(): DecodeStep {
    const step = this.decoder.next()
    if (step._tag === "Frame") this.partialSince = undefined
    return step
  }

  /**
   * After a read was handled: the partial-frame clock runs only while the
   * connection waits for the peer's bytes of a started frame. Complete frames
   * the server itself holds back (requests in flight at the limit, a peer not
   * reading, a yielded turn) are not partial: backpressure must never close a
   * connection or drop its requests. True while the clock runs.
   */
  trackPartialFrame(waitingForBytes: boolean, nowMs: () => number): boolean {
    if (waitingForBytes && this.decoder.hasPartialFrame) {
      this.partialSince ??= nowMs()
      return true
    }
    this.partialSince = undefined
    return false
  }
}
