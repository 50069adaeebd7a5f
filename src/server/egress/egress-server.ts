import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import * as path from "node:path"
import * as tls from "node:tls"
import * as Effect from "effect/Effect"
import * as FiberSet from "effect/FiberSet"
import type * as Scope from "effect/Scope"
import type { EgressListen } from "../../config/egress-listen.js"
import type { EgressRoute } from "../../config/egress-routes.js"
import { errorCode } from "../../errors/errors.js"
import { ServerStartError } from "../../errors/startup.js"
import { AccessPolicy } from "../../services/AccessPolicy.js"
import { AuditLog } from "../../services/AuditLog.js"
import { KeyStorage } from "../../services/KeyStorage.js"
import { RefreshCoordinator } from "../../services/RefreshCoordinator.js"
import { TokenStore } from "../../services/TokenStore.js"
import { socketPathProblem } from "../socket-path.js"
import { CountingResponse } from "./counting-response.js"
import { makeEgressCredentials } from "./egress-credentials.js"
import { EGRESS_DEFAULTS, type EgressTuning } from "./egress-tuning.js"
import { type InFlight, makeForwarder } from "./forward-request.js"
import { InFlightAborts } from "./in-flight-aborts.js"
import { makePhantomCheck } from "./phantom.js"

/** What egress mode needs besides the server's services (docs/PROTOCOL.md §23). */
export interface EgressSettings {
  readonly routes: ReadonlyArray<EgressRoute>
  readonly phantom: string
  readonly listen: EgressListen
  /** Extra trusted CA certificates (PEM), beside Node's own. */
  readonly ca?: string | undefined
  readonly tuning?: Partial<EgressTuning> | undefined
}

/** A running egress proxy: its listener as the ready line names it. */
export interface RunningEgress {
  /** `http://127.0.0.1:PORT` or `unix:/abs/path.sock`. */
  readonly url: string
  /** The Unix socket, when it listens on one. */
  readonly socketPath: string | undefined
}

export type EgressServices = TokenStore | KeyStorage | AccessPolicy | RefreshCoordinator | AuditLog

const listenOn = (
  server: http.Server,
  listen: EgressListen,
  socketDir: string
): Effect.Effect<RunningEgress, ServerStartError> =>
  Effect.async<RunningEgress, ServerStartError>((resume) => {
    const socketPath =
      listen.kind === "unix"
        ? path.join(socketDir, `llxprt-egress-${process.pid}-${crypto.randomBytes(4).toString("hex")}.sock`)
        : undefined
    const problem = socketPath === undefined ? undefined : socketPathProblem(socketPath)
    if (problem !== undefined) return resume(Effect.fail(problem))
    const subject = socketPath ?? (listen.kind === "tcp" ? `${listen.host}:${listen.port}` : "")
    server.once("error", (cause) =>
      resume(
        Effect.fail(new ServerStartError({ reason: "Listen", subject, detail: errorCode(cause) ?? "error" }))
      )
    )
    const ready = () => {
      server.removeAllListeners("error")
      server.on("error", () => {})
      if (socketPath !== undefined) {
        fs.chmodSync(socketPath, 0o600)
        return resume(Effect.succeed({ url: `unix:${socketPath}`, socketPath }))
      }
      const address = server.address() as AddressInfo
      resume(Effect.succeed({ url: `http://${address.address}:${address.port}`, socketPath: undefined }))
    }
    if (socketPath === undefined) {
      if (listen.kind === "tcp") server.listen(listen.port, listen.host, ready)
      return
    }
    // 0600 from the moment the socket exists, as the credential socket (§2).
    const previousUmask = process.umask(0o177)
    try {
      server.listen(socketPath, ready)
    } finally {
      process.umask(previousUmask)
    }
  })

/**
 * The egress proxy as a scoped service, on the same token store, key storage,
 * access policy and refresh coordinator as the socket. The sandbox side is
 * Node's HTTP server, the upstream side one undici `Agent` (TLS with Node's CA
 * store plus `ca`). Stopping the scope stops accepting, aborts the requests in
 * flight (and their upstream requests), interrupts lookups and refreshes
 * waited for, closes every connection and removes the socket file.
 */
export const startEgress = (
  settings: EgressSettings,
  socketDir: string
): Effect.Effect<RunningEgress, ServerStartError, Scope.Scope | EgressServices> =>
  Effect.gen(function* () {
    const tuning: EgressTuning = { ...EGRESS_DEFAULTS, ...settings.tuning }
    const audit = yield* AuditLog
    const clock = yield* Effect.clock
    const credentials = makeEgressCredentials({
      tokens: yield* TokenStore,
      keys: yield* KeyStorage,
      policy: yield* AccessPolicy,
      refresh: yield* RefreshCoordinator,
      nowMs: () => clock.unsafeCurrentTimeMillis()
    })
    // Loaded here, not at start-up: a server without egress mode never loads its HTTP client.
    const { Agent } = yield* Effect.promise(() => import("undici"))
    const dispatcher = yield* Effect.acquireRelease(
      Effect.sync(
        () =>
          new Agent({
            connect: {
              timeout: tuning.connectTimeoutMs,
              // One TLS context for every connection: building one from ~140 CA certificates takes milliseconds.
              ...(settings.ca === undefined
                ? {}
                : { secureContext: tls.createSecureContext({ ca: [...tls.rootCertificates, settings.ca] }) })
            },
            headersTimeout: tuning.idleTimeoutMs,
            bodyTimeout: tuning.idleTimeoutMs
          })
      ),
      (agent) => Effect.promise(() => agent.destroy().catch(() => undefined))
    )
    const run = yield* FiberSet.makeRuntimePromise<never>()
    const inFlight: InFlight = { count: 0, stopping: false, controllers: new InFlightAborts() }
    const forward = makeForwarder({
      routes: new Map(settings.routes.map((route) => [route.name, route])),
      phantom: settings.phantom,
      checkPhantom: makePhantomCheck(settings.phantom),
      credentials,
      dispatcher,
      tuning,
      audit,
      run,
      inFlight
    })
    const server = http.createServer({ keepAlive: true, ServerResponse: CountingResponse }, forward)
    server.maxConnections = tuning.maxConnections
    const running = yield* Effect.acquireRelease(listenOn(server, settings.listen, socketDir), (running) =>
      Effect.sync(() => {
        inFlight.stopping = true
        server.close()
        inFlight.controllers.abortAll()
        server.closeAllConnections()
        if (running.socketPath !== undefined) fs.rmSync(running.socketPath, { force: true })
      })
    )
    audit.event("Info", "egress proxy listening", { egress: running.url, routes: settings.routes.length })
    return running
  })
