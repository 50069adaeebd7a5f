import type * as http from "node:http"
import { EgressRefused } from "../../errors/egress.js"

/** What was read of a request body: its size, and the copy kept for a retry (dropped past its bound). */
export interface BodyState {
  bytes: number
  complete: boolean
  kept: Array<Buffer> | undefined
  tooLarge: boolean
}

export const hasBody = (req: http.IncomingMessage): boolean =>
  req.headers["content-length"] !== undefined || req.headers["transfer-encoding"] !== undefined

/**
 * The request body as the upstream pulls it: chunk by chunk, so a slow
 * upstream slows the sandbox (backpressure); past `maxBytes` it fails with
 * `BodyTooLarge`, which aborts the upstream request.
 */
export async function* streamBody(
  req: http.IncomingMessage,
  state: BodyState,
  maxBytes: number,
  keepBytes: number
): AsyncGenerator<Buffer> {
  for await (const chunk of req as AsyncIterable<Buffer>) {
    state.bytes += chunk.length
    if (state.bytes > maxBytes) {
      state.tooLarge = true
      throw new EgressRefused({ reason: "BodyTooLarge" })
    }
    if (state.kept !== undefined) {
      if (state.bytes <= keepBytes) state.kept.push(chunk)
      else state.kept = undefined
    }
    yield chunk
  }
  state.complete = true
}
