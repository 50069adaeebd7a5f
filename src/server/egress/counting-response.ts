import * as http from "node:http"

/**
 * The sandbox's response, counting the body bytes written to it (`write`; a
 * refusal's body goes out with `end` and is not counted) for the audit line.
 * One class for every response instead of a `write` closure put on each one:
 * patching every response made the egress proxy's young-generation
 * scavenges keep (and promote) about ten times as much, and each took
 * milliseconds (README, "Performance").
 */
export class CountingResponse<
  Request extends http.IncomingMessage = http.IncomingMessage
> extends http.ServerResponse<Request> {
  bodyBytes = 0

  override write(chunk: unknown, encoding?: unknown, callback?: unknown): boolean {
    if (typeof chunk === "string")
      this.bodyBytes += Buffer.byteLength(
        chunk,
        typeof encoding === "string" ? (encoding as BufferEncoding) : "utf8"
      )
    else if (chunk instanceof Uint8Array) this.bodyBytes += chunk.length
    return super.write(chunk as never, encoding as never, callback as never)
  }
}
