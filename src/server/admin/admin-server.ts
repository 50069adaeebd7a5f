import * as fsp from "node:fs/promises"
import type * as net from "node:net"
import * as path from "node:path"
import * as Effect from "effect/Effect"
import * as FiberSet from "effect/FiberSet"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import { StoreFailure } from "../../errors/errors.js"
import type { DataDirRefused, ServerStartError } from "../../errors/startup.js"
import { dirProblem, refusal } from "../../layers/file-store/data-dir-check.js"
import type { AuditLogShape } from "../../services/AuditLog.js"
import type { PeerVerifierShape } from "../../services/PeerVerifier.js"
import type { DeadlineWatch } from "../deadline-watch.js"
import { listen, removeSocketFile } from "../listener.js"
import { MAX_SOCKET_PATH_BYTES, removeStaleSockets } from "../socket-path.js"
import { AdminConnection } from "./admin-connection.js"
import { type AdminDeps, makeAdminOperations } from "./admin-operations.js"

/** Admin connections at once: `status --watch`, `approve` and a few more; the rest are closed at once. */
export const MAX_ADMIN_CONNECTIONS = 8

/**
 * `{dataDir}/run`, created 0700 when missing; like the store's directories
 * (§22), an existing one must be a real directory of ours that group and
 * others cannot write, else the server does not start (`DataDirRefused`).
 */
const prepareAdminDir = (dir: string): Effect.Effect<void, DataDirRefused | StoreFailure> =>
  Effect.tryPromise({
    try: async () => {
      await fsp.mkdir(dir, { recursive: true, mode: 0o700 })
      const stats = await fsp.lstat(dir)
      if (stats.isSymbolicLink()) return refusal(dir, "Link")
      const problem = dirProblem(stats)
      return problem === undefined ? undefined : refusal(dir, problem, stats)
    },
    catch: (cause) => StoreFailure.io("open", cause)
  }).pipe(Effect.flatMap((refused) => (refused === undefined ? Effect.void : Effect.fail(refused))))

/** `admin-{pid}.sock`: one per running server in `{dataDir}/run`. */
const ADMIN_SOCKET = /^admin-(\d+)\.sock$/

export const adminSocketPath = (dir: string): string => path.join(dir, `admin-${process.pid}.sock`)

/** The admin sockets of running servers in `dir` (for the commands that talk to them), by pid. */
export const adminSocketName = ADMIN_SOCKET

export interface AdminServerOptions {
  readonly dir: string
  readonly peers: PeerVerifierShape
  readonly audit: AuditLogShape
  readonly deadlines: DeadlineWatch
  readonly deps: Omit<AdminDeps, "view"> & { readonly view: Omit<AdminDeps["view"], "adminSocketPath"> }
}

/**
 * The host-only admin socket of a running server (`{dataDir}/run`, a 0700
 * directory in the data directory, never in the socket directory that is
 * mounted into sandboxes): 0600, the same peer-uid check as the sandbox
 * socket, the same framing, the admin operations only. Stale sockets of
 * servers that are gone are removed first. A path over the platform's limit
 * leaves the server without one (logged): `status`, `policy` and `approve`
 * cannot reach it. Everything stops with the scope; the file is removed last.
 */
export const startAdminServer = (
  options: AdminServerOptions
): Effect.Effect<string | undefined, ServerStartError | DataDirRefused | StoreFailure, Scope.Scope> =>
  Effect.gen(function* () {
    const { peers, audit, deadlines } = options
    const file = adminSocketPath(path.resolve(options.dir))
    if (Buffer.byteLength(file) > MAX_SOCKET_PATH_BYTES) {
      audit.event(
        "Warning",
        "admin socket path too long for this platform; status, policy and approve cannot reach this server",
        { path: file, limit: MAX_SOCKET_PATH_BYTES }
      )
      return undefined
    }
    yield* prepareAdminDir(path.dirname(file))
    yield* removeStaleSockets(path.dirname(file), ADMIN_SOCKET)
    yield* Effect.addFinalizer(() => removeSocketFile(file))

    const requests = yield* FiberSet.make<unknown, unknown>()
    const fork = yield* FiberSet.runtime(requests)<never>().pipe(
      Effect.withUnhandledErrorLogLevel(Option.none())
    )
    const handle = makeAdminOperations({
      ...options.deps,
      view: { ...options.deps.view, adminSocketPath: file }
    })
    const connections = new Set<AdminConnection>()
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        for (const connection of connections) connection.destroy()
      })
    )
    const context = {
      handle,
      fork: <A, E>(effect: Effect.Effect<A, E>) => fork(effect),
      deadlines,
      onClosed: (connection: AdminConnection) => connections.delete(connection)
    }

    const accept = (socket: net.Socket): void => {
      const peer = peers.verify(socket)
      if (peer._tag === "Rejected" || connections.size >= MAX_ADMIN_CONNECTIONS) {
        audit.event("Warning", "admin connection refused", {
          reason: peer._tag === "Rejected" ? "peer" : "max_connections",
          ...(peer.uid === undefined ? {} : { peerUid: peer.uid })
        })
        socket.destroy()
        return
      }
      connections.add(new AdminConnection(socket, context))
    }
    yield* listen(file, (socket) => {
      try {
        accept(socket)
      } catch {
        socket.destroy()
      }
    })
    return file
  })
