import { type DecodeStep, FrameDecoder } from "../protocol/frame.js"
import { MAX_FRAME_BYTES } from "../protocol/limits.js"

/**
 * The bytes of one connection on their way in: cut into frames as they
 * arrive, with the cap on bytes received but not yet handled, and the start
 * of a frame that is only partly received (for its deadline).
 */
export class ConnectionInput {
  private readonly decoder = new FrameDecoder(MAX_FRAME_BYTES)
  /** When the frame now arriving began (Clock ms); undefined while no frame is partly received. */
  partialSince: number | undefined

  constructor(private readonly maxBufferedBytes: number) {}

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
