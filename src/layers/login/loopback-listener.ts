import * as http from "node:http"
import type { AddressInfo } from "node:net"
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"

/**
 * The listener of a `browser_redirect` login (PROTOCOL.md §17): HTTP on
 * 127.0.0.1 at a port the system picks, for one session, closed with its
 * scope (the session's fiber: a cancel, the expiry or the server's stop).
 * Only `GET /callback` is taken; anything else is answered 404. A local
 * process can reach it, so it holds little: small headers (larger ones are
 * answered 431 by Node), short request timeouts, a few connections (more are
 * closed at once), and at most a few callbacks waiting to be looked at (more
 * are answered 503). Answers never echo what was sent.
 */

export const CALLBACK_PATH = "/callback"
const MAX_CONNECTIONS = 16
const MAX_WAITING_CALLBACKS = 8
const REQUEST_TIMEOUT_MS = 10_000

/** One request to the callback path: its query, and how to answer the browser (plain text). */
export interface Callback {
  readonly params: URLSearchParams
  readonly respond: (status: number, text: string) => void
}

export interface LoopbackListener {
  readonly port: number
  /** The redirect URI the provider must send the browser to. */
  readonly redirectUri: string
  /** Waits for the next callback request. */
  readonly next: Effect.Effect<Callback>
}

const answer = (response: http.ServerResponse, status: number, text: string): void => {
  if (response.headersSent || response.destroyed) return
  response.writeHead(status, {
    "content-type": "text/plain; charset=utf-8",
    "cache-control": "no-store",
    connection: "close"
  })
  response.end(`${text}\n`)
}

export const listenOnLoopback: Effect.Effect<LoopbackListener, never, Scope.Scope> = Effect.gen(function* () {
  const callbacks = yield* Queue.dropping<Callback>(MAX_WAITING_CALLBACKS)
  const server = http.createServer(
    { maxHeaderSize: 8192, requestTimeout: REQUEST_TIMEOUT_MS },
    (req, res) => {
      const url = new URL(req.url ?? "/", "http://127.0.0.1")
      if (req.method !== "GET" || url.pathname !== CALLBACK_PATH) {
        answer(res, 404, "Not found.")
        return
      }
      const callback: Callback = {
        params: url.searchParams,
        respond: (status, text) => answer(res, status, text)
      }
      if (!Queue.unsafeOffer(callbacks, callback)) answer(res, 503, "Busy; try again.")
    }
  )
  server.headersTimeout = REQUEST_TIMEOUT_MS
  server.keepAliveTimeout = 1_000
  server.maxConnections = MAX_CONNECTIONS
  const port = yield* Effect.acquireRelease(
    Effect.async<number>((resume) => {
      server.once("error", (error) => resume(Effect.die(error)))
      server.listen(0, "127.0.0.1", () => resume(Effect.succeed((server.address() as AddressInfo).port)))
    }),
    () =>
      Effect.async<void>((resume) => {
        server.close(() => resume(Effect.void))
        server.closeAllConnections()
      })
  )
  return {
    port,
    redirectUri: `http://127.0.0.1:${port}${CALLBACK_PATH}`,
    next: Queue.take(callbacks)
  }
})
