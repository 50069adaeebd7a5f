import * as fs from "node:fs"
import * as path from "node:path"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import { type Answer, connectSocket, Wire, type WireFailure } from "../client/wire.js"
import type { AdminOperation, AdminPayloads } from "../protocol/admin.js"
import { adminSocketName } from "../server/admin/admin-server.js"
import { isRunning } from "../server/socket-path.js"

/** A running server could not be reached or answered with an error. */
export class AdminCallFailed extends Schema.TaggedError<AdminCallFailed>()("AdminCallFailed", {
  /** The admin socket. */
  socket: Schema.String,
  /** What went wrong, for the user (never holds a secret: admin answers hold none). */
  reason: Schema.String
}) {
  override get message(): string {
    return this.reason
  }
}

/** One call to an admin socket may take this long, connect and handshake included. */
const CALL_TIMEOUT = Duration.seconds(10)

export interface RunningAdmin {
  readonly pid: number
  readonly socket: string
}

/** Every admin socket in `{dataDir}/run` (`admin-{pid}.sock`), its server running or not, by pid. */
export const adminSockets = (dataDir: string): Array<RunningAdmin> => {
  const dir = path.join(dataDir, "run")
  let names: Array<string>
  try {
    names = fs.readdirSync(dir)
  } catch {
    return []
  }
  return names
    .flatMap((name) => {
      const match = adminSocketName.exec(name)
      const pid = match === null ? Number.NaN : Number(match[1])
      return Number.isInteger(pid) ? [{ pid, socket: path.join(dir, name) }] : []
    })
    .sort((a, b) => a.pid - b.pid)
}

/** The admin sockets of the servers running on `dataDir`, by pid. */
export const runningServers = (dataDir: string): Array<RunningAdmin> =>
  adminSockets(dataDir).filter((server) => isRunning(server.pid))

export type AdminCall = <Op extends AdminOperation>(
  op: Op,
  payload: (typeof AdminPayloads)[Op]["Encoded"]
) => Effect.Effect<unknown, AdminCallFailed>

/** Connects to `socket` and completes the handshake; the connection closes with the scope. */
export const openAdmin = (socket: string): Effect.Effect<AdminCall, AdminCallFailed, Scope.Scope> =>
  Effect.gen(function* () {
    const failed = (reason: string) =>
      new AdminCallFailed({ socket, reason: `server at ${socket}: ${reason}` })
    const wire = yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: () => connectSocket(socket).then((connected) => new Wire(connected, () => {})),
        catch: (cause) => failed(`cannot connect: ${(cause as NodeJS.ErrnoException).code ?? "error"}`)
      }),
      (opened) => Effect.sync(() => opened.close())
    )
    const handshake = yield* Effect.promise(() => wire.awaitHandshake(undefined)).pipe(
      Effect.timeoutFail({ duration: CALL_TIMEOUT, onTimeout: () => failed("no answer to the handshake") })
    )
    if (Either.isLeft(handshake)) return yield* failed("the server closed the connection")
    if (!handshake.right.ok) return yield* failed(`handshake refused: ${handshake.right.error}`)
    let next = 0
    return (op, payload) =>
      Effect.gen(function* () {
        const id = `a${++next}`
        const answer = yield* Deferred.make<Answer, WireFailure>()
        wire.pending.set(id, answer)
        wire.request(id, op, payload as Record<string, unknown>)
        const reply = yield* Deferred.await(answer).pipe(
          Effect.mapError(() => failed("the server closed the connection")),
          Effect.timeoutFail({ duration: CALL_TIMEOUT, onTimeout: () => failed(`no answer to ${op}`) })
        )
        if (!reply.ok) return yield* failed(`${reply.code}: ${reply.error}`)
        return reply.data
      })
  })

/** Calls `use` on each server running on `dataDir`, one connection each; fails when none runs. */
export const onEveryServer = <A, E, R>(
  dataDir: string,
  use: (server: RunningAdmin, call: AdminCall) => Effect.Effect<A, E, R>
): Effect.Effect<Array<A>, E | AdminCallFailed, R> =>
  Effect.suspend(() => {
    const servers = runningServers(dataDir)
    if (servers.length === 0) {
      return Effect.fail(
        new AdminCallFailed({
          socket: path.join(dataDir, "run"),
          reason: `no credproxy server is running on the data directory ${dataDir}`
        })
      )
    }
    return Effect.forEach(servers, (server) =>
      Effect.scoped(Effect.flatMap(openAdmin(server.socket), (call) => use(server, call)))
    )
  })
