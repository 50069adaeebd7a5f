import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { AdminStatusData } from "../../server/admin/admin-status.js"
import { isRunning } from "../../server/socket-path.js"
import { adminSockets, openAdmin } from "../admin-client.js"
import { BUDGET, type Check, type Finding, fail, ok, warn } from "./check.js"
import { connect } from "./socket-probe.js"

const NAME = "servers"

/** At most this many admin sockets are looked at. */
const MAX_SERVERS = 64

const decodeStatus = Schema.decodeUnknown(AdminStatusData)

const since = (startedAt: number) => new Date(startedAt).toISOString()

/** One running server: its admin socket answers `status`, and the sandbox socket it names accepts a connection. */
const runningServer = (pid: number, admin: string): Effect.Effect<Finding> =>
  Effect.scoped(
    Effect.gen(function* () {
      const call = yield* openAdmin(admin)
      const status = yield* Effect.flatMap(call("status", {}), (data) => decodeStatus(data))
      const socket = status.sockets.sandbox
      return yield* connect(socket, BUDGET.connect).pipe(
        Effect.as(ok(NAME, `pid ${pid} answers on ${socket} (since ${since(status.startedAt)})`)),
        Effect.catchAll((failure) =>
          Effect.succeed(
            fail(
              NAME,
              `pid ${pid} runs but its socket ${socket} does not answer (${failure._tag === "Code" ? failure.code : "no answer in time"})`,
              `stop it (kill ${pid}) and start the proxy again`
            )
          )
        )
      )
    })
  ).pipe(
    Effect.timeoutFail({
      duration: Duration.sum(BUDGET.connect, BUDGET.answer),
      onTimeout: () => "no answer in time"
    }),
    Effect.catchAll((problem) =>
      Effect.succeed(
        fail(
          NAME,
          `pid ${pid} runs but its admin socket ${admin} does not answer (${typeof problem === "string" ? problem : problem._tag === "ParseError" ? "an answer of another version" : problem.message})`,
          `stop it (kill ${pid}) and start the proxy again`
        )
      )
    )
  )

/**
 * The servers that use this data directory, from their admin sockets
 * (`{dataDir}/run/admin-{pid}.sock`, docs/PROTOCOL.md §20): each must still
 * run, answer `status` there, and accept a connection on the sandbox socket
 * it names. None running is fine (exec starts one per session).
 */
export const serversCheck: Check = {
  name: NAME,
  run: ({ dataDir }) =>
    Effect.gen(function* () {
      const admins = adminSockets(dataDir)
      if (admins.length === 0) {
        return [ok(NAME, "none runs on this data directory (credproxy serve or exec starts one)")]
      }
      return yield* Effect.forEach(
        admins.slice(0, MAX_SERVERS),
        ({ pid, socket }): Effect.Effect<Finding> =>
          isRunning(pid)
            ? runningServer(pid, socket)
            : Effect.succeed(
                warn(
                  NAME,
                  `pid ${pid} is gone without removing its admin socket ${socket}`,
                  "nothing to do: the next server on this data directory removes it"
                )
              ),
        { concurrency: 8 }
      )
    })
}
