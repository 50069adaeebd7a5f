import type * as net from "node:net"
import * as path from "node:path"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FiberSet from "effect/FiberSet"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import type { StoreFailure } from "../errors/errors.js"
import type { DataDirRefused, ServerStartError } from "../errors/startup.js"
import { PROTOCOL_VERSIONS } from "../protocol/limits.js"
import { AccessPolicy } from "../services/AccessPolicy.js"
import { AuditLog } from "../services/AuditLog.js"
import { AuditTail } from "../services/AuditTail.js"
import { CapabilityGate } from "../services/CapabilityGate.js"
import { type Asker, Confirmations } from "../services/Confirmations.js"
import { KeyStorage } from "../services/KeyStorage.js"
import { LoginSessions } from "../services/LoginSessions.js"
import { PeerVerifier } from "../services/PeerVerifier.js"
import { RateLimiter } from "../services/RateLimiter.js"
import { RefreshCoordinator } from "../services/RefreshCoordinator.js"
import { TokenQuota } from "../services/TokenQuota.js"
import { TokenRenewal } from "../services/TokenRenewal.js"
import { TokenStore } from "../services/TokenStore.js"
import { startAdminServer } from "./admin/admin-server.js"
import { Connection } from "./connection.js"
import type { ConnectionContext } from "./connection-context.js"
import { startDeadlineWatch } from "./deadline-watch.js"
import { HandshakeSlots } from "./handshake-slots.js"
import { listen, removeSocketFile } from "./listener.js"
import { makeOperations } from "./operations.js"
import { readHandshake, STOPPING } from "./read-handshake.js"
import { makeRequestReader, type RequestReader } from "./read-request.js"
import { REJECTION_LOG } from "./rejections.js"
import { makeRequestLog } from "./request-log.js"
import { ServerConfig } from "./ServerConfig.js"
import { ConnectionInfo, type PeerInfo, ServerStatus, type StatusSnapshot } from "./ServerStatus.js"
import { chooseSocketPath, defaultSocketDir, prepareSocketDir, removeStaleSockets } from "./socket-path.js"
import { throttledEvent } from "./throttled-event.js"

/** A running server: where it listens, and its counters. It runs until the scope it was started in closes. */
export interface RunningServer {
  readonly socketPath: string
  /** The host-only admin socket (`credproxy status`, `policy`, `approve`); none when its path is too long. */
  readonly adminSocketPath: string | undefined
  readonly status: () => StatusSnapshot
}

export type ServerServices =
  | CapabilityGate
  | TokenStore
  | KeyStorage
  | AccessPolicy
  | RateLimiter
  | PeerVerifier
  | AuditLog
  | ServerConfig
  | RefreshCoordinator
  | TokenRenewal
  | Confirmations
  | AuditTail
  | TokenQuota
  | LoginSessions

/** A connection's identity (§17, confirmations): its peer uid and the capability token it presented, as a digest. */
const askerOf = (peer: PeerInfo, presented: string): Asker => ({
  identity: `uid:${peer.uid ?? "unknown"}|token:${presented}`,
  ...(peer.uid === undefined ? {} : { peerUid: peer.uid }),
  ...(peer.pid === undefined ? {} : { peerPid: peer.pid })
})

/**
 * The credential proxy server as a scoped program. Acquisition order sets the
 * stop order (finalizers run in reverse): stop accepting → drain requests in
 * flight (up to the drain deadline, on the Effect Clock) → interrupt the rest
 * → close every connection → remove the socket file.
 */
export const serve: Effect.Effect<
  RunningServer,
  ServerStartError | DataDirRefused | StoreFailure,
  Scope.Scope | ServerServices
> = Effect.gen(function* () {
  const config = yield* ServerConfig
  const audit = yield* AuditLog
  const peers = yield* PeerVerifier
  const limiter = yield* RateLimiter
  const capability = yield* CapabilityGate
  const status = new ServerStatus()
  const clock = yield* Effect.clock
  const logins = yield* LoginSessions
  const deps = {
    tokens: yield* TokenStore,
    keys: yield* KeyStorage,
    policy: yield* AccessPolicy,
    refresh: yield* RefreshCoordinator,
    renewal: yield* TokenRenewal,
    confirm: yield* Confirmations,
    quota: yield* TokenQuota,
    logins,
    nowMs: () => clock.unsafeCurrentTimeMillis()
  }
  const handle = makeOperations(deps, { restrict: config.restrict })
  const startedAt = deps.nowMs()

  // The path length is checked before the directory is created, so a refused path leaves nothing behind.
  const socketPath = yield* chooseSocketPath(path.resolve(config.socketDir ?? defaultSocketDir()))
  yield* prepareSocketDir(path.dirname(socketPath))
  const stale = yield* removeStaleSockets(path.dirname(socketPath))
  if (stale > 0) audit.event("Info", "removed sockets of servers that are gone", { count: stale })
  yield* Effect.addFinalizer(() => removeSocketFile(socketPath))

  const connections = new Set<Connection>()
  /** Connections without a completed handshake (§22: they may hold only a share of the slots). */
  const unauthenticated = new HandshakeSlots<Connection>(Math.max(4, Math.floor(config.maxConnections / 4)))
  yield* Effect.addFinalizer(() =>
    Effect.sync(() => {
      for (const connection of connections) connection.destroy()
    })
  )

  const requests = yield* FiberSet.make<unknown, unknown>()
  // A request's failure is answered on its connection; it must not also be logged by the runtime as
  // an unhandled error, which would print the whole cause (a provider's answer may hold tokens).
  const fork = yield* FiberSet.runtime(requests)<never>().pipe(
    Effect.withUnhandledErrorLogLevel(Option.none())
  )
  const deadlines = yield* startDeadlineWatch

  /** Set when the server starts to stop: from then on every request is answered at once (§21). */
  let stopping = false
  yield* Effect.addFinalizer(() =>
    Effect.gen(function* () {
      stopping = true
      const pending = yield* FiberSet.size(requests)
      if (pending > 0) {
        audit.event("Info", "draining requests in flight", { requests: pending })
        // Finalizers run uninterruptibly; the wait must be interruptible for the deadline to cut it short.
        yield* Effect.interruptible(FiberSet.awaitEmpty(requests)).pipe(
          Effect.timeout(Duration.millis(config.shutdownDrainMs)),
          Effect.ignore
        )
      }
    })
  )

  const readers = new Map<number, RequestReader>()
  const context: ConnectionContext = {
    readHandshake: (bytes) => (stopping ? STOPPING : readHandshake(bytes, PROTOCOL_VERSIONS, capability)),
    openSession: (accepted, info) => {
      let reader = readers.get(accepted.version)
      if (reader === undefined) {
        reader = makeRequestReader(accepted.version)
        readers.set(accepted.version, reader)
      }
      info.version = accepted.version
      return { version: accepted.version, read: reader, asker: askerOf(info.peer, accepted.presented) }
    },
    handle,
    stopping: () => stopping,
    requests: makeRequestLog(audit, status, deadlines),
    audit,
    status,
    deadlines,
    fork: (effect) => fork(effect),
    config,
    onClosed: (connection) => {
      connections.delete(connection)
      unauthenticated.delete(connection)
    },
    onHandshaken: (connection) => unauthenticated.delete(connection)
  }

  const logPeerRefused = throttledEvent(audit, clock, REJECTION_LOG.peer)
  const logTooMany = throttledEvent(audit, clock, REJECTION_LOG.max_connections)
  const logEvicted = throttledEvent(audit, clock, REJECTION_LOG.evicted)

  /**
   * Makes room for a new connection (§22): when connections without a
   * handshake hold their whole share, or every slot is taken and some are
   * theirs, one of them is closed (`HandshakeSlots.victim`). A client that
   * completes its handshake is never pushed out by others that keep connecting.
   */
  const makeRoom = (): void => {
    if (!unauthenticated.full && connections.size < config.maxConnections) return
    const victim = unauthenticated.victim()
    if (victim === undefined) return
    unauthenticated.delete(victim)
    // Its slot is free now; the socket's close event comes later.
    connections.delete(victim)
    status.reject("evicted")
    logEvicted({ share: unauthenticated.share })
    victim.destroy()
  }

  /** The accept path reads top to bottom: ask the kernel who it is, enforce the cap, then allocate state. */
  const accept = (socket: net.Socket): void => {
    const peer = peers.verify(socket)
    if (peer._tag === "Rejected") {
      logPeerRefused({
        peerUid: peer.uid,
        serverUid: peer.expectedUid,
        ...(peer.pid === undefined ? {} : { peerPid: peer.pid })
      })
      status.reject("peer")
      socket.destroy()
      return
    }
    makeRoom()
    if (connections.size >= config.maxConnections) {
      status.reject("max_connections")
      logTooMany({ limit: config.maxConnections })
      socket.destroy()
      return
    }
    if (peer.pid !== undefined) audit.event("Debug", "connection accepted", { peerPid: peer.pid })
    const info = new ConnectionInfo(peer, clock.unsafeCurrentTimeMillis())
    const connection = new Connection(socket, context, limiter.forConnection(), info)
    connections.add(connection)
    unauthenticated.add(connection, peer.pid)
  }

  /** A failure while accepting costs that one connection, never the server (this runs outside any fiber). */
  const acceptContained = (socket: net.Socket): void => {
    try {
      accept(socket)
    } catch (defect) {
      status.reject("internal")
      audit.event("Error", "accepting a connection failed; closed it", {
        defect: defect instanceof Error ? defect.name : typeof defect
      })
      socket.destroy()
    }
  }

  yield* listen(socketPath, acceptContained)
  const snapshot = () => status.snapshot(connections, deadlines.size, logins.size())
  const adminSocketPath =
    config.adminSocketDir === undefined
      ? undefined
      : yield* startAdminServer({
          dir: config.adminSocketDir,
          peers,
          audit,
          deadlines,
          deps: {
            ...deps,
            tail: yield* AuditTail,
            audit,
            view: {
              socketPath,
              startedAt,
              restrict: config.restrict,
              capabilityToken: capability.required,
              status: snapshot,
              connections: () => connections
            }
          }
        })
  audit.event("Info", "listening", {
    socket: socketPath,
    capabilityToken: capability.required,
    ...(adminSocketPath === undefined ? {} : { admin: adminSocketPath })
  })
  return { socketPath, adminSocketPath, status: snapshot }
})
