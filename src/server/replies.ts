import * as Cause from "effect/Cause"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import { HandlerDefect, type ProxyError, ResponseTooLarge } from "../errors/errors.js"
import { toWireError } from "../errors/wire-error.js"
import { maxFrameBytes } from "../protocol/limits.js"
import { failureJson, handshakeFailureJson, handshakeOkJson, successJson } from "../protocol/responses.js"

/** One answer frame ready to send: its JSON, its size in bytes, and what it counts as (`ok` or the wire code). */
export interface Reply {
  readonly json: string
  readonly bytes: number
  readonly outcome: string
}

const replyOf = (json: string, outcome: string): Reply => ({ json, bytes: Buffer.byteLength(json), outcome })

/**
 * The answer to a request (PROTOCOL.md §5): success with the handler's `data`
 * JSON, or the failure as its wire code and text, carrying the negotiated
 * `version`. An answer over the version's frame limit is never sent; it
 * becomes `INTERNAL_ERROR` (§14).
 */
export const replyTo = (
  version: number,
  id: string | undefined,
  result: Either.Either<string, ProxyError>
): Reply => {
  if (Either.isLeft(result)) return failureReply(version, id, result.left)
  if (id === undefined) return failureReply(version, id, new HandlerDefect({ name: "MissingId" }))
  const reply = replyOf(successJson(version, id, result.right), "ok")
  return reply.bytes > maxFrameBytes(version)
    ? failureReply(version, id, new ResponseTooLarge({ bytes: reply.bytes }))
    : reply
}

const failureReply = (version: number, id: string | undefined, error: ProxyError): Reply => {
  const wire = toWireError(error)
  return replyOf(failureJson(version, id, wire), wire.code)
}

export const handshakeAccepted = (version: number): Reply => replyOf(handshakeOkJson(version), "ok")

export const handshakeRefused = (error: ProxyError): Reply => {
  const wire = toWireError(error)
  return replyOf(handshakeFailureJson(wire), wire.code)
}

/**
 * What a request's work ended in, as one error: its typed failure, or a
 * `HandlerDefect` for a defect or an interruption (the connection closed,
 * the server stopped).
 */
export const failureOf = (cause: Cause.Cause<ProxyError>): ProxyError => {
  const failure = Cause.failureOption(cause)
  if (Option.isSome(failure)) return failure.value
  const defect = Cause.dieOption(cause)
  return new HandlerDefect({
    name: Option.isSome(defect)
      ? defect.value instanceof Error
        ? defect.value.name
        : typeof defect.value
      : "Interrupted"
  })
}
