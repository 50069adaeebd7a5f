import * as Effect from "effect/Effect"
import { readRunRecords } from "../../server/run-record.js"
import { isRunning } from "../../server/socket-path.js"
import { BUDGET, type Check, type Finding, fail, ok, warn } from "./check.js"
import { connect } from "./socket-probe.js"

const NAME = "servers"

/**
 * The servers that use this data directory, from their run records
 * (`src/server/run-record.ts`): each must still run and answer on its
 * socket. None running is fine (exec starts one per session).
 */
export const serversCheck: Check = {
  name: NAME,
  run: ({ dataDir }) =>
    Effect.gen(function* () {
      const found = yield* Effect.promise(() => readRunRecords(dataDir).catch(() => undefined))
      if (typeof found === "string") {
        return [fail(NAME, found, `chmod 700 it, or remove it: servers write their records there`)]
      }
      if (found === undefined || found.length === 0) {
        return [ok(NAME, "none runs on this data directory (credproxy serve or exec starts one)")]
      }
      return yield* Effect.forEach(
        found,
        (entry): Effect.Effect<Finding> => {
          if (entry._tag === "Unreadable") {
            return Effect.succeed(
              warn(
                NAME,
                `run record ${entry.name} ${entry.problem}`,
                "remove it: no server writes such a file"
              )
            )
          }
          const { pid, socket, startedAt } = entry.record
          if (!isRunning(pid)) {
            return Effect.succeed(
              warn(
                NAME,
                `pid ${pid} (since ${startedAt}) is gone without removing its record`,
                "nothing to do: the next serve on this data directory removes it"
              )
            )
          }
          return Effect.scoped(connect(socket, BUDGET.connect)).pipe(
            Effect.as(ok(NAME, `pid ${pid} answers on ${socket} (since ${startedAt})`)),
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
        },
        { concurrency: 8 }
      )
    })
}
