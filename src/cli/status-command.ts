import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Console from "effect/Console"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import { AdminStatusData } from "../server/admin/admin-status.js"
import { AdminCallFailed, openAdmin, runningServers } from "./admin-client.js"
import * as shared from "./options.js"
import { renderStatus } from "./status-view.js"

const decodeStatus = Schema.decodeUnknown(AdminStatusData)

/** The status of every server running on `dataDir` (none is an empty list). */
const statuses = (dataDir: string) =>
  Effect.forEach(runningServers(dataDir), (server) =>
    Effect.scoped(
      Effect.flatMap(openAdmin(server.socket), (call) =>
        Effect.flatMap(call("status", {}), (data) =>
          Effect.mapError(
            decodeStatus(data),
            () => new AdminCallFailed({ socket: server.socket, reason: "its status could not be read" })
          )
        )
      )
    )
  )

const text = (dataDir: string, servers: ReadonlyArray<AdminStatusData>): string =>
  servers.length === 0
    ? `no credproxy server is running on the data directory ${dataDir}`
    : servers.map((server) => renderStatus(server).join("\n")).join("\n\n")

/** Clears a terminal and puts the cursor home, so `--watch` redraws in place. */
const CLEAR = "\u001b[H\u001b[2J"

export const statusCommand = Command.make(
  "status",
  {
    dataDir: shared.dataDir,
    json: Options.boolean("json").pipe(Options.withDescription("print JSON (one line per snapshot)")),
    watch: Options.boolean("watch").pipe(Options.withDescription("a new snapshot every second until Ctrl-C"))
  },
  (flags) => {
    const once = Effect.flatMap(statuses(flags.dataDir), (servers) => {
      if (flags.json) return Console.log(JSON.stringify(servers))
      const block = text(flags.dataDir, servers)
      if (!flags.watch) return Console.log(block)
      // On a terminal the snapshot is redrawn in place; piped, snapshots follow each other.
      return Console.log(process.stdout.isTTY === true ? `${CLEAR}${block}` : `${block}\n`)
    })
    return flags.watch ? Effect.repeat(once, Schedule.spaced(Duration.seconds(1))).pipe(Effect.asVoid) : once
  }
).pipe(
  Command.withDescription(
    "show every server running on the data directory: connections, policy, refresh state, recent events"
  )
)
