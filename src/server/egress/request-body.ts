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

/** A body whose declared length is at most this is read whole before it is sent: one write upstream instead of a stream. */
export const SMALL_BODY_BYTES = 64 * 1024

/** A small body with a declared length, read whole (the usual API call); fails on a short body with the request. */
export const readSmallBody = (req: http.IncomingMessage, state: BodyState, keep: boolean): Promise<Buffer> =>
  new Promise((resolve, reject) => {
    const chunks: Array<Buffer> = []
    req.on("data", (chunk: Buffer) => {
      state.bytes += chunk.length
      chunks.push(chunk)
    })
    req.once("end", () => {
      const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)
      state.complete = true
      if (keep) state.kept = [body]
      resolve(body)
    })
    req.once("error", reject)
  })

/** The declared length when it makes the body small enough to read whole. */
export const isSmallBody = (req: http.IncomingMessage): boolean => {
  const length = req.headers["content-length"]
  return (
    length !== undefined &&
    req.headers["transfer-encoding"] === undefined &&
    Number(length) <= SMALL_BODY_BYTES
  )
}
