import * as Either from "effect/Either"
import type * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import { InvalidRequest, RateLimited } from "../errors/errors.js"
import {
  type DecodedRequest,
  isRequestId,
  OPERATION_SINCE,
  type Operation,
  OperationPayloads
} from "../protocol/operations.js"
import { fieldIssueOf } from "../protocol/parse-issue.js"

type JsonObject = Readonly<Record<string, unknown>>

/** The frame as a JSON object, or `undefined` when it is not JSON or not an object. */
export const parseJsonObject = (bytes: Buffer): JsonObject | undefined => {
  let value: unknown
  try {
    value = JSON.parse(bytes.toString("utf8"))
  } catch {
    return undefined
  }
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? (value as JsonObject)
    : undefined
}

/** One request frame after the checks that come before any handler. */
export type RequestRead<R = DecodedRequest> =
  | {
      readonly _tag: "Refused"
      readonly id: string | undefined
      readonly op: string
      readonly error: InvalidRequest | RateLimited
    }
  | { readonly _tag: "Request"; readonly request: R }

const NOT_AN_OBJECT = new InvalidRequest({ reason: "NotAnObject" })
const UNUSABLE_ID = new InvalidRequest({ reason: "UnusableId" })
const UNKNOWN_OPERATION = new InvalidRequest({ reason: "UnknownOperation" })
const EMPTY_PAYLOAD = {}

type Decoder = (input: unknown) => Either.Either<{ readonly payload: unknown }, ParseResult.ParseError>

/** Reads request frames of one negotiated protocol version. */
export type RequestReader<R = DecodedRequest> = (bytes: Buffer, rateLimit: () => number) => RequestRead<R>

/**
 * The request checks of PROTOCOL.md §14, in its order and in one place: the
 * rate limit (every frame counts; the refusal carries the id when it is
 * usable), a JSON object, a usable `id` (else the answer has none), a known
 * `op`, then `v` and the operation's payload with its schema (decoded once;
 * an omitted payload is `{}`). The access policy and the handler come after.
 * `payloads` are the operations this reader knows (the sandbox socket's, or
 * the admin socket's): any other `op` is unknown.
 */
export const makeFrameReader = <R>(
  version: number,
  payloads: Readonly<Record<string, Schema.Schema.AnyNoContext>>
): RequestReader<R> => {
  const decoders = new Map<string, Decoder>()
  for (const [op, payload] of Object.entries(payloads)) {
    decoders.set(op, Schema.decodeUnknownEither(Schema.Struct({ v: Schema.Literal(version), payload })))
  }

  return (bytes, rateLimit) => {
    const message = parseJsonObject(bytes)
    const id = message !== undefined && isRequestId(message.id) ? message.id : undefined
    const decode =
      message !== undefined && typeof message.op === "string" ? decoders.get(message.op) : undefined
    const op = decode === undefined ? undefined : (message?.op as string)
    const retryAfter = rateLimit()
    if (retryAfter > 0)
      return { _tag: "Refused", id, op: op ?? "unknown", error: new RateLimited({ retryAfter }) }
    if (message === undefined) return { _tag: "Refused", id: undefined, op: "unknown", error: NOT_AN_OBJECT }
    if (id === undefined) return { _tag: "Refused", id: undefined, op: op ?? "unknown", error: UNUSABLE_ID }
    if (op === undefined || decode === undefined)
      return { _tag: "Refused", id, op: "unknown", error: UNKNOWN_OPERATION }
    const decoded = decode(message.payload === undefined ? { v: message.v, payload: EMPTY_PAYLOAD } : message)
    if (Either.isLeft(decoded)) {
      return {
        _tag: "Refused",
        id,
        op,
        error: new InvalidRequest({ reason: "InvalidField", issue: fieldIssueOf(decoded.left) })
      }
    }
    return { _tag: "Request", request: { id, op, payload: decoded.right.payload } as R }
  }
}

/** The sandbox socket's reader for `version`: an operation newer than it (`cancel` on version 1) is unknown. */
export const makeRequestReader = (version: number): RequestReader =>
  makeFrameReader<DecodedRequest>(
    version,
    Object.fromEntries(
      (Object.keys(OperationPayloads) as Array<Operation>)
        .filter((op) => (OPERATION_SINCE[op] ?? 1) <= version)
        .map((op) => [op, OperationPayloads[op]])
    )
  )
