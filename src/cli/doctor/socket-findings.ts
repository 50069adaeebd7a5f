import * as fs from "node:fs"
import * as Either from "effect/Either"
import { connectFailure, handshakeRefusal, ProxyResponseError } from "../../client/errors.js"
import type { Answer } from "../../client/wire.js"
import { errorCode } from "../../errors/errors.js"
import { explained, type Finding, fail, ok, warn } from "./check.js"
import type { StepFailure } from "./socket-probe.js"

/** What each step of the socket checks found, as findings with their fixes (`sandbox-checks.ts`). */

export type Step =
  | "socket-variable"
  | "socket-file"
  | "capability-token"
  | "connect"
  | "handshake"
  | "list-providers"
  | "get-token"

export const timedOut = (check: Step, what: string): Finding =>
  fail(check, `no ${what} within the time doctor allows`, "see the proxy's log on the host: it may be stuck")

const answerFailure = (check: Step, failure: StepFailure | { readonly _tag: string }): Finding =>
  failure._tag === "Timeout"
    ? timedOut(check, "answer")
    : fail(check, "the connection broke before the answer", "see the proxy's log on the host")

/** A finding for an error answer, with what to do about it. */
const refused = (check: Step, op: string, answer: Answer & { readonly ok: false }, fix?: string): Finding => {
  const error = new ProxyResponseError({ op, code: answer.code, reason: answer.error })
  return fail(check, error.explained.what, fix ?? error.explained.fix ?? "see the proxy's log on the host")
}

export const socketFile = (socketPath: string): Finding => {
  const uid = process.getuid?.()
  let stats: fs.Stats
  try {
    stats = fs.lstatSync(socketPath)
  } catch (error) {
    const code = errorCode(error)
    if (code === "EACCES") {
      return fail(
        "socket-file",
        `uid ${uid} may not look into the directory of ${socketPath}`,
        'run as the proxy\'s user (docker --user "$(id -u):$(id -g)", podman --userns=keep-id)'
      )
    }
    return explained("socket-file", "fail", connectFailure(socketPath, code))
  }
  if (!stats.isSocket()) return explained("socket-file", "fail", connectFailure(socketPath, "ENOTSOCK"))
  const mode = (stats.mode & 0o777).toString(8)
  if (uid !== undefined && stats.uid !== uid) {
    return warn(
      "socket-file",
      `a socket of uid ${stats.uid}, mode ${mode}; this process runs as uid ${uid}`,
      `run as uid ${stats.uid}, or start the proxy with --allow-uid ${uid}`
    )
  }
  return ok("socket-file", `a socket of this user, mode ${mode}`)
}

export const where = (env: NodeJS.ProcessEnv): string =>
  env.LLXPRT_CAPABILITY_FD !== undefined && /^\d+$/.test(env.LLXPRT_CAPABILITY_FD)
    ? `descriptor ${env.LLXPRT_CAPABILITY_FD} (LLXPRT_CAPABILITY_FD)`
    : `LLXPRT_CAPABILITY_FILE ${env.LLXPRT_CAPABILITY_FILE}`

export const handshakeFinding = (
  outcome: Either.Either<Either.Either<Answer, { readonly _tag: string }>, StepFailure>,
  token: string | undefined,
  socketPath: string
): Finding => {
  if (Either.isLeft(outcome)) return timedOut("handshake", "answer to the handshake")
  const answer = outcome.right
  if (Either.isLeft(answer)) {
    if (answer.left._tag === "ConnectionLost") {
      const uid = process.getuid?.()
      return fail(
        "handshake",
        `the proxy closed the connection without an answer: it does so for a user it does not accept (this is uid ${uid}) and past its connection limit`,
        `run as the proxy's user, or start it with --allow-uid ${uid}`
      )
    }
    return fail(
      "handshake",
      `${socketPath} does not speak the proxy's protocol`,
      "set LLXPRT_CREDENTIAL_SOCKET to the path the proxy prints"
    )
  }
  const reply = answer.right
  if (!reply.ok) {
    const refusal = handshakeRefusal(reply.code, reply.error)
    if (reply.code === "UNAUTHORIZED") {
      return fail(
        "handshake",
        refusal.what,
        token === undefined
          ? "the proxy requires a capability token: hand it over on LLXPRT_CAPABILITY_FD or in LLXPRT_CAPABILITY_FILE"
          : "the token handed over is not this proxy's (each credproxy exec makes a new one): hand over the current one"
      )
    }
    return explained("handshake", "fail", refusal)
  }
  const accepted = token === undefined ? "no capability token required" : "capability token accepted"
  return ok("handshake", `protocol version ${String(reply.data.version)}, ${accepted}`)
}

export const listing = (outcome: Either.Either<Answer, StepFailure | { readonly _tag: string }>): Finding => {
  if (Either.isLeft(outcome)) return answerFailure("list-providers", outcome.left)
  const reply = outcome.right
  if (!reply.ok) return refused("list-providers", "list_providers", reply)
  const providers = Array.isArray(reply.data.providers) ? (reply.data.providers as Array<unknown>) : []
  return ok(
    "list-providers",
    providers.length === 0
      ? "none listed (nothing stored or allowed, or the proxy is restricted)"
      : `tokens of ${providers.map(String).join(", ")}`
  )
}

export const tokenFinding = (
  outcome: Either.Either<Answer, StepFailure | { readonly _tag: string }>,
  { provider, bucket }: { readonly provider: string; readonly bucket: string },
  nowMs: number
): Finding => {
  if (Either.isLeft(outcome)) return answerFailure("get-token", outcome.left)
  const reply = outcome.right
  const name = `${provider}:${bucket}`
  if (!reply.ok) {
    const fixes: Partial<Record<string, string>> = {
      NOT_FOUND: `store it on the host: credproxy token import ${provider} < token.json`,
      UNAUTHORIZED: `start the proxy with --allow ${name}`,
      FORBIDDEN: `the proxy is restricted: store ${name} on the host and allow it with --allow`
    }
    return refused("get-token", "get_token", reply, fixes[reply.code])
  }
  const left = Number(reply.data.expiry) * 1000 - nowMs
  const minutes = Math.round(Math.abs(left) / 60_000)
  return left > 0
    ? ok("get-token", `a token for ${name}, valid for ${minutes} min`)
    : warn(
        "get-token",
        `a token for ${name} that expired ${minutes} min ago`,
        `run credproxy doctor --provider ${provider} on the host`
      )
}
