import * as fsp from "node:fs/promises"
import * as path from "node:path"
import * as Effect from "effect/Effect"
import { checkDataDir } from "../../layers/file-store/data-dir-check.js"
import { longestSocketName, socketDirProblem, socketPathProblem } from "../../server/socket-path.js"
import { BUDGET, bounded, type Check, explained, fail, ok } from "./check.js"
import { peerCredentialsCheck } from "./peer-probe.js"
import { endpointsCheck, providersCheck } from "./provider-checks.js"
import { serversCheck } from "./servers-check.js"
import { storeCheck, storedTokenCheck } from "./store-check.js"

/** The oldest Node credproxy runs on (package.json `engines`). */
const MIN_NODE_MAJOR = 20

const nodeCheck: Check = {
  name: "node",
  run: () =>
    Effect.sync(() => {
      const major = Number(process.versions.node.split(".")[0])
      return [
        major >= MIN_NODE_MAJOR
          ? ok("node", `Node ${process.versions.node}`)
          : fail(
              "node",
              `Node ${process.versions.node} is older than ${MIN_NODE_MAJOR}`,
              `install Node ${MIN_NODE_MAJOR} or newer`
            )
      ]
    })
}

const modeOf = (mode: number) => (mode & 0o777).toString(8)

/** The data directory's §22 checks, without creating it. */
const dataDirCheck: Check = {
  name: "data-dir",
  run: ({ dataDir }) =>
    checkDataDir(dataDir, { create: false }).pipe(
      Effect.flatMap((real) =>
        real === undefined
          ? Effect.succeed([ok("data-dir", `${dataDir} does not exist yet (created 0700 on first use)`)])
          : Effect.promise(() => fsp.stat(real)).pipe(
              Effect.map((stats) => [ok("data-dir", `${real}: yours, mode ${modeOf(stats.mode)}`)])
            )
      ),
      Effect.catchTags({
        DataDirRefused: (refused) => Effect.succeed([explained("data-dir", "fail", refused.explained)]),
        StoreFailure: (failure) =>
          Effect.succeed([fail("data-dir", `${dataDir}: ${failure.message}`, "check its permissions")])
      })
    )
}

/** The socket directory's §2 checks (owner, mode, not a link), without creating it. */
const socketDirCheck: Check = {
  name: "socket-dir",
  run: ({ socketDir }) =>
    Effect.promise(async () => {
      const stats = await fsp.lstat(socketDir).catch((error: NodeJS.ErrnoException) => error)
      if (stats instanceof Error) {
        return stats.code === "ENOENT"
          ? [ok("socket-dir", `${socketDir} does not exist yet (serve creates it 0700)`)]
          : [
              fail(
                "socket-dir",
                `cannot look at ${socketDir} (${stats.code})`,
                "choose another with --socket-dir"
              )
            ]
      }
      const problem = socketDirProblem(socketDir, stats)
      return problem === undefined
        ? [ok("socket-dir", `${socketDir}: yours, mode ${modeOf(stats.mode)}`)]
        : [explained("socket-dir", "fail", problem.explained)]
    })
}

/** The longest socket path a server would choose in the socket directory, against the platform's limit. */
const socketPathCheck: Check = {
  name: "socket-path",
  run: ({ socketDir }) =>
    Effect.sync(() => {
      const longest = path.join(socketDir, longestSocketName)
      const problem = socketPathProblem(longest)
      return [
        problem === undefined
          ? ok(
              "socket-path",
              `${Buffer.byteLength(longest)} bytes at most, within ${process.platform}'s limit`
            )
          : explained("socket-path", "fail", problem.explained)
      ]
    })
}

/**
 * The host's checks, in the order they are shown; they run at once, each
 * within its budget. The keyring store's check ("unlocked, reachable"),
 * when that store exists, belongs right after `storeCheck`.
 */
export const hostChecks: ReadonlyArray<Check> = [
  nodeCheck,
  dataDirCheck,
  socketDirCheck,
  socketPathCheck,
  peerCredentialsCheck,
  providersCheck,
  endpointsCheck,
  storeCheck,
  storedTokenCheck,
  serversCheck
].map(bounded(BUDGET.check))
