import * as readline from "node:readline"
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { UsageError } from "../errors/usage.js"
import { ApprovalsData, ApproveData } from "../protocol/admin.js"
import type { ConfirmAnswer } from "../services/Confirmations.js"
import { type AdminCall, AdminCallFailed, onEveryServer, type RunningAdmin } from "./admin-client.js"
import * as shared from "./options.js"

const decodeApprovals = Schema.decodeUnknown(ApprovalsData)
const decodeApprove = Schema.decodeUnknown(ApproveData)

/** `y` once, `a` for the rest of the session, `n` refused; the words work too. */
const ANSWERS: Readonly<Record<string, ConfirmAnswer>> = {
  y: "once",
  yes: "once",
  a: "session",
  all: "session",
  n: "deny",
  no: "deny"
}

const unreadable = (server: RunningAdmin) =>
  new AdminCallFailed({ socket: server.socket, reason: "its answer could not be read" })

/** Reads one line of standard input (undefined at its end): the user's answer to one prompt. */
const readAnswer = (lines: AsyncIterator<string>) =>
  Effect.promise(() => lines.next()).pipe(Effect.map((next) => (next.done === true ? undefined : next.value)))

const answer = (server: RunningAdmin, call: AdminCall, id: string, reply: ConfirmAnswer) =>
  Effect.flatMap(call("approve", { id, answer: reply }), (data) =>
    Effect.flatMap(
      Effect.mapError(decodeApprove(data), () => unreadable(server)),
      ({ answered }) =>
        Console.error(
          answered
            ? `${id}: ${reply === "deny" ? "refused" : reply === "once" ? "allowed once" : "allowed for the session"}`
            : `${id}: no longer waiting`
        )
    )
  )

/** Lists what waits on one server and asks the user about each, one line of input per request. */
const promptAll = (server: RunningAdmin, call: AdminCall, lines: AsyncIterator<string>) =>
  Effect.gen(function* () {
    const { pending } = yield* Effect.flatMap(call("approvals", {}), (data) =>
      Effect.mapError(decodeApprovals(data), () => unreadable(server))
    )
    for (const waiting of pending) {
      yield* Console.error(
        `${waiting.id}: pid ${waiting.peerPid ?? "?"} (uid ${waiting.peerUid ?? "?"}) wants ${waiting.credential} for ${waiting.op}; ${waiting.secondsLeft}s left. Allow? [y]es once, [a]ll this session, [n]o`
      )
      const line = yield* readAnswer(lines)
      if (line === undefined) return pending.length
      const reply = ANSWERS[line.trim().toLowerCase()]
      if (reply === undefined) yield* Console.error(`${waiting.id}: skipped (answer y, a or n)`)
      else yield* answer(server, call, waiting.id, reply)
    }
    return pending.length
  })

export const approveCommand = Command.make(
  "approve",
  {
    dataDir: shared.dataDir,
    id: Args.text({ name: "ID" }).pipe(Args.withDescription("a waiting request's id"), Args.optional),
    reply: Args.text({ name: "ANSWER" }).pipe(
      Args.withDescription("y (once), a (session) or n"),
      Args.optional
    )
  },
  (flags) =>
    Effect.gen(function* () {
      if (Option.isSome(flags.id)) {
        const reply = ANSWERS[Option.getOrElse(flags.reply, () => "").toLowerCase()]
        if (reply === undefined) return yield* new UsageError({ reason: "MissingAnswer", subject: "the id" })
        const id = flags.id.value
        yield* onEveryServer(flags.dataDir, (server, call) => answer(server, call, id, reply))
        return
      }
      const input = readline.createInterface({ input: process.stdin, terminal: false })
      const lines = input[Symbol.asyncIterator]()
      const counts = yield* onEveryServer(flags.dataDir, (server, call) =>
        promptAll(server, call, lines)
      ).pipe(Effect.ensuring(Effect.sync(() => input.close())))
      if (counts.every((count) => count === 0)) yield* Console.error("nothing is waiting for approval")
    })
).pipe(
  Command.withDescription(
    "answer the uses waiting for confirmation (serve --confirm): y once, a for the session, n to refuse"
  )
)
