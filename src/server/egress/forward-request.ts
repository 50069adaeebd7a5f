import type * as http from "node:http"
import { performance } from "node:perf_hooks"
import { Writable } from "node:stream"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import type { Dispatcher } from "undici"
import type { EgressRoute } from "../../config/egress-routes.js"
import { type EgressError, EgressRefused, egressAnswerBody, toEgressAnswer } from "../../errors/egress.js"
import type { AuditLogShape } from "../../services/AuditLog.js"
import { isAllowed, isAmbiguousPath } from "./allow-rules.js"
import type { CountingResponse } from "./counting-response.js"
import type { Credential, EgressCredentials } from "./egress-credentials.js"
import type { EgressTuning } from "./egress-tuning.js"
import { sandboxHeaders, upstreamHeaders } from "./hop-headers.js"
import type { InFlightAborts } from "./in-flight-aborts.js"
import { type BodyState, hasBody, isSmallBody, readSmallBody, streamBody } from "./request-body.js"
import { UpstreamAbort } from "./upstream-abort.js"

/** The requests in flight, so a stop can abort them, and whether the proxy stops. */
export interface InFlight {
  count: number
  stopping: boolean
  readonly controllers: InFlightAborts
}

export interface ForwardContext {
  readonly routes: ReadonlyMap<string, EgressRoute>
  readonly phantom: string
  readonly checkPhantom: (value: string | undefined, scheme: string | undefined) => boolean
  readonly credentials: EgressCredentials
  readonly dispatcher: Dispatcher
  readonly tuning: EgressTuning
  readonly audit: AuditLogShape
  /** Runs an Effect in the proxy's scope: interrupted when it stops. */
  readonly run: <A, E>(effect: Effect.Effect<A, E>) => Promise<A>
  readonly inFlight: InFlight
}

/** The audit line of one request (PROTOCOL.md §23): names, sizes, status and time; never a value. */
interface Exchange {
  route: string
  path: string
  bytesIn: number
}

/** Where a dropped answer's body goes. */
const discard = () =>
  new Writable({
    write: (_chunk, _encoding, done) => done()
  })

/** The longest path an audit line shows. */
const MAX_LOGGED_PATH = 256

const single = (value: string | Array<string> | undefined): string | undefined =>
  Array.isArray(value) ? undefined : value

/**
 * One sandbox request, checked top to bottom before anything leaves the host
 * (route 404, phantom 401, path and method 403, policy 403, body size 413),
 * then forwarded with the real credential; the answer streams back as it
 * comes. A credential the stores hold in memory is used at once; otherwise
 * its lookup (a read, a refresh) runs as an Effect in the proxy's scope.
 */
export const makeForwarder = (ctx: ForwardContext) => {
  const { tuning, inFlight } = ctx

  const refuse = (req: http.IncomingMessage, res: CountingResponse, error: EgressError) => {
    if (res.headersSent || res.destroyed) {
      res.destroy()
      return
    }
    const answer = toEgressAnswer(error)
    const body = egressAnswerBody(answer)
    res.statusCode = answer.status
    res.setHeader("content-type", "application/json")
    res.setHeader("content-length", Buffer.byteLength(body))
    if (answer.retryAfter !== undefined) res.setHeader("retry-after", String(answer.retryAfter))
    // A body left unread would be read as the next request: close the connection instead.
    if (!req.complete) res.setHeader("connection", "close")
    res.end(body)
  }

  const failureOf = (error: unknown, body: BodyState): EgressError => {
    if (body.tooLarge) return new EgressRefused({ reason: "BodyTooLarge" })
    const code = (error as { code?: unknown } | null)?.code
    if (code === "UND_ERR_CONNECT_TIMEOUT") return new EgressRefused({ reason: "ConnectTimeout" })
    if (code === "UND_ERR_HEADERS_TIMEOUT" || code === "UND_ERR_BODY_TIMEOUT") {
      return new EgressRefused({ reason: "UpstreamIdle" })
    }
    ctx.audit.event("Warning", "egress upstream failed", {
      code: typeof code === "string" ? code : "unknown"
    })
    return new EgressRefused({ reason: "UpstreamUnreachable" })
  }

  const send = async (
    route: EgressRoute,
    target: string,
    credential: Credential,
    req: http.IncomingMessage,
    res: CountingResponse,
    controller: UpstreamAbort,
    exchange: Exchange
  ) => {
    const withBody = hasBody(req)
    const body: BodyState = {
      bytes: 0,
      complete: !withBody,
      kept: credential.token === undefined ? undefined : [],
      tooLarge: false
    }
    const options = (
      value: string,
      payload: Buffer | AsyncIterable<Buffer> | null
    ): Dispatcher.RequestOptions => ({
      origin: route.origin,
      path: target,
      method: req.method as Dispatcher.HttpMethod,
      headers: upstreamHeaders(req.rawHeaders, route, value, ctx.phantom),
      // undici takes an async iterable as a body (and pulls it, so backpressure holds); its types lag.
      body: payload as Exclude<Dispatcher.RequestOptions["body"], undefined>,
      signal: controller,
      headersTimeout: tuning.idleTimeoutMs,
      bodyTimeout: tuning.idleTimeoutMs
    })
    /**
     * One attempt: undici writes the answer straight into the sandbox's response (`stream`, with
     * backpressure). With `retryable`, a 401 is dropped instead, for one retry after a refresh.
     */
    const attempt = (value: string, payload: Buffer | AsyncIterable<Buffer> | null, retryable: boolean) => {
      let dropped = false
      return ctx.dispatcher
        .stream(options(value, payload), ({ statusCode, headers }) => {
          if (retryable && statusCode === 401 && body.complete && body.kept !== undefined) {
            dropped = true
            return discard()
          }
          exchange.bytesIn = body.bytes
          res.writeHead(statusCode, sandboxHeaders(headers))
          return res
        })
        .then(() => dropped)
    }
    try {
      // A small body (the usual API call) is read whole and sent in one write; a larger one streams.
      const payload = !withBody
        ? null
        : isSmallBody(req)
          ? await readSmallBody(req, body, credential.token !== undefined)
          : streamBody(req, body, tuning.maxBodyBytes, tuning.retryBodyBytes)
      // §23: an access token refused upstream gets one refresh and one retry, when the body was kept.
      const refused = await attempt(credential.value, payload, credential.token !== undefined)
      if (!refused || credential.token === undefined || body.kept === undefined) return
      const renewed = await ctx.run(Effect.either(ctx.credentials.renewAfterRefusal(route, credential.token)))
      if (Either.isLeft(renewed)) return refuse(req, res, renewed.left)
      if (controller.aborted) return
      await attempt(renewed.right.value, withBody ? Buffer.concat(body.kept) : null, false)
    } catch (error) {
      exchange.bytesIn = body.bytes
      if (!controller.aborted) refuse(req, res, failureOf(error, body))
    }
  }

  /** The checks before anything leaves the host, in their order (§23); the first that fails is the answer. */
  const refusal = (
    req: http.IncomingMessage,
    target: Target,
    route: EgressRoute | undefined
  ): EgressRefused["reason"] | undefined => {
    if (inFlight.stopping) return "Stopping"
    if (inFlight.count > tuning.maxInFlight) return "Busy"
    if (!target.url.startsWith("/")) return "BadTarget"
    if (route === undefined) return "UnknownRoute"
    if (!ctx.checkPhantom(single(req.headers[route.header]), route.scheme)) return "Phantom"
    if (isAmbiguousPath(target.rest) || target.url.includes(ctx.phantom)) return "BadTarget"
    if (!isAllowed(route.allow, req.method ?? "", target.rest)) return "NotAllowed"
    const length = Number(req.headers["content-length"] ?? 0)
    if (!(length <= tuning.maxBodyBytes)) return "BodyTooLarge"
    return undefined
  }

  /** Counts the request in flight until its connection is done with it, then writes its audit line. */
  const track = (req: http.IncomingMessage, res: CountingResponse, exchange: Exchange) => {
    const started = performance.now()
    const controller = new UpstreamAbort()
    inFlight.count++
    inFlight.controllers.add(controller)
    res.once("close", () => {
      inFlight.count--
      inFlight.controllers.delete(controller)
      // The sandbox went away before the answer was whole: the upstream request goes too.
      if (!res.writableFinished) controller.abort()
      ctx.audit.event("Info", "egress", {
        route: exchange.route,
        method: req.method,
        path: exchange.path,
        status: res.statusCode,
        complete: res.writableFinished,
        bytesIn: exchange.bytesIn,
        bytesOut: res.bodyBytes,
        ms: Math.round(performance.now() - started)
      })
    })
    return controller
  }

  return (req: http.IncomingMessage, res: CountingResponse) => {
    const target = parseTarget(req.url ?? "")
    const route = ctx.routes.get(target.routeName)
    const exchange: Exchange = {
      route: route === undefined ? "-" : route.name,
      path: (route === undefined ? target.pathPart : target.rest).slice(0, MAX_LOGGED_PATH),
      bytesIn: 0
    }
    const controller = track(req, res, exchange)
    const refused = refusal(req, target, route)
    if (refused !== undefined || route === undefined) {
      refuse(req, res, new EgressRefused({ reason: refused ?? "UnknownRoute" }))
      return
    }
    const path = `${route.basePath}${target.rest}${target.query}`
    const lookup = ctx.credentials.lookup(route)
    if (Either.isEither(lookup)) {
      if (Either.isLeft(lookup)) refuse(req, res, lookup.left)
      else void send(route, path, lookup.right, req, res, controller, exchange)
      return
    }
    ctx.run(Effect.either(lookup)).then(
      (found) => {
        if (controller.aborted) return
        if (Either.isLeft(found)) refuse(req, res, found.left)
        else void send(route, path, found.right, req, res, controller, exchange)
      },
      () => refuse(req, res, new EgressRefused({ reason: "Stopping" }))
    )
  }
}

/** A request target `/{route}{rest}?{query}` taken apart. */
interface Target {
  readonly url: string
  readonly pathPart: string
  readonly routeName: string
  readonly rest: string
  /** `?...` or `""`: passed through unchanged. */
  readonly query: string
}

const parseTarget = (url: string): Target => {
  const mark = url.indexOf("?")
  const pathPart = mark < 0 ? url : url.slice(0, mark)
  const slash = pathPart.indexOf("/", 1)
  return {
    url,
    pathPart,
    routeName: slash < 0 ? pathPart.slice(1) : pathPart.slice(1, slash),
    rest: slash < 0 ? "/" : pathPart.slice(slash),
    query: mark < 0 ? "" : url.slice(mark)
  }
}
