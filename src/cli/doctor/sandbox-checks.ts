import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import type * as Scope from "effect/Scope"
import { resolveCapabilityToken } from "../../client/capability-token.js"
import { connectFailure, ProxyUnavailable } from "../../client/errors.js"
import type { Wire } from "../../client/wire.js"
import { socketPathProblem } from "../../server/socket-path.js"
import { BUDGET, bounded, type Check, type DoctorInput, explained, type Finding, ok, skip } from "./check.js"
import {
  handshakeFinding,
  listing,
  type Step,
  socketFile,
  timedOut,
  tokenFinding,
  where
} from "./socket-findings.js"
import { ask, connect, handshake, wireOn } from "./socket-probe.js"

/**
 * The way from this process to the proxy, step by step, as the client in
 * the sandbox walks it: the variable, the socket file, the capability token,
 * the connection, the handshake, a listing, and a token if one is named.
 * The first step that fails ends the walk; the steps after it are shown as
 * not tried.
 */

const stepsOf = (input: DoctorInput): ReadonlyArray<Step> => [
  "socket-variable",
  "socket-file",
  "capability-token",
  "connect",
  "handshake",
  "list-providers",
  ...(input.token === undefined ? [] : (["get-token"] as const))
]

/** What the steps hand on to the next: the token handed over, the open wire. */
interface Walked {
  token?: string | undefined
  wire?: Wire | undefined
}

type StepRun = (input: DoctorInput, walked: Walked) => Effect.Effect<Finding, never, Scope.Scope>

const sync =
  (run: (input: DoctorInput, walked: Walked) => Finding): StepRun =>
  (input, walked) =>
    Effect.sync(() => run(input, walked))

/** The path checked: the steps after the first run only once a socket is known. */
const socketOf = (input: DoctorInput) => input.socket ?? { path: "", from: "--socket" as const }

const STEPS: ReadonlyArray<readonly [Step, StepRun]> = [
  [
    "socket-variable",
    sync((input) => {
      if (input.socket === undefined) {
        return explained("socket-variable", "fail", new ProxyUnavailable({ reason: "NoSocket" }).explained)
      }
      const tooLong = socketPathProblem(input.socket.path)
      return tooLong === undefined
        ? ok("socket-variable", `${input.socket.from} ${input.socket.path}`)
        : explained("socket-variable", "fail", tooLong.explained)
    })
  ],
  ["socket-file", sync((input) => socketFile(socketOf(input).path))],
  [
    "capability-token",
    sync((input, walked) => {
      try {
        walked.token = resolveCapabilityToken(undefined, input.env)
      } catch (error) {
        const detail = error instanceof Error ? error.message : String(error)
        return explained(
          "capability-token",
          "fail",
          new ProxyUnavailable({ reason: "CapabilityToken", detail }).explained
        )
      }
      return ok(
        "capability-token",
        walked.token === undefined
          ? "none handed over (needed only when the proxy requires one)"
          : `present, from ${where(input.env)}`
      )
    })
  ],
  [
    "connect",
    (input, walked) =>
      Effect.either(connect(socketOf(input).path, BUDGET.connect)).pipe(
        Effect.flatMap((connected) => {
          if (Either.isLeft(connected)) {
            const failure = connected.left
            return Effect.succeed(
              failure._tag === "Timeout"
                ? timedOut("connect", "connection")
                : explained("connect", "fail", connectFailure(socketOf(input).path, failure.code))
            )
          }
          return Effect.map(wireOn(connected.right), (wire) => {
            walked.wire = wire
            return ok("connect", "connected")
          })
        })
      )
  ],
  [
    "handshake",
    (input, walked) =>
      Effect.map(Effect.either(handshake(walked.wire as Wire, walked.token, BUDGET.answer)), (outcome) =>
        handshakeFinding(outcome, walked.token, socketOf(input).path)
      )
  ],
  [
    "list-providers",
    (_, walked) =>
      Effect.map(Effect.either(ask(walked.wire as Wire, "list_providers", {}, BUDGET.answer)), listing)
  ],
  [
    "get-token",
    (input, walked) => {
      const token = input.token
      if (token === undefined) return Effect.succeed(ok("get-token", "not asked"))
      return Effect.all([
        Effect.either(ask(walked.wire as Wire, "get_token", { ...token }, BUDGET.getToken)),
        Clock.currentTimeMillis
      ]).pipe(Effect.map(([outcome, now]) => tokenFinding(outcome, token, now)))
    }
  ]
]

/** The socket checks, as one check whose steps are shown one a line; the first failure ends the walk. */
export const socketCheck: Check = bounded(BUDGET.check)({
  name: "socket",
  run: (input) =>
    Effect.scoped(
      Effect.gen(function* () {
        const walked: Walked = {}
        const findings: Array<Finding> = []
        const steps = stepsOf(input)
        for (const [step, run] of STEPS) {
          if (!steps.includes(step)) continue
          const failedAt = findings.find((finding) => finding.status === "fail")?.check
          findings.push(
            failedAt === undefined ? yield* run(input, walked) : skip(step, `not tried: ${failedAt} failed`)
          )
        }
        return findings
      })
    )
})
