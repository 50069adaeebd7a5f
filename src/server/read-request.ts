import * as Either from "effect/Either"
import type * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import { InvalidRequest, RateLimited } from "../errors/errors.js"
import {
  type DecodedRequest,
  isOperation,
  isRequestId,
  OPERATION_SINCE,
  type Operation,
  OperationPayloads,
  requestSchema
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
export type RequestRead =
  | {
      readonly _tag: "Refused"
      readonly id: string | undefined
      readonly op: string
      readonly error: InvalidRequest | RateLimited
    }
  | { readonly _tag: "Request"; readonly request: DecodedRequest }

const NOT_AN_OBJECT = new InvalidRequest({ reason: "NotAnObject" })
const UNUSABLE_ID = new InvalidRequest({ reason: "UnusableId" })
const UNKNOWN_OPERATION = new InvalidRequest({ reason: "UnknownOperation" })
const EMPTY_PAYLOAD = {}

type Decoder = (input: unknown) => Either.Either<{ readonly payload: unknown }, ParseResult.ParseError>

/** Reads request frames of one negotiated protocol version. */
export type RequestReader = (bytes: Buffer, rateLimit: () => number) => RequestRead

/**
 * The request checks of PROTOCOL.md §14, in its order and in one place: the
 * rate limit (every frame counts; the refusal carries the id when it is
 * usable), a JSON object, a usable `id` (else the answer has none), a known
 * `op`, then `v` and the operation's payload with its schema (decoded once;
 * an omitted payload is `{}`). The access policy and the handler come after,
 * in `operations.ts`.
 */
export const makeRequestReader = (version: number): RequestReader => {
  const decoders: Partial<Record<Operation, Decoder>> = {}
  for (const op of Object.keys(OperationPayloads) as Array<Operation>) {
    // An operation newer than this version (`cancel` on version 1) is unknown on it.
    if ((OPERATION_SINCE[op] ?? 1) <= version)
      decoders[op] = Schema.decodeUnknownEither(requestSchema(op, version))
  }

  return (bytes, rateLimit) => {
    const message = parseJsonObject(bytes)
    const id = message !== undefined && isRequestId(message.id) ? message.id : undefined
    const decode = message !== undefined && isOperation(message.op) ? decoders[message.op] : undefined
    const op = decode === undefined ? undefined : (message?.op as Operation)
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
    return { _tag: "Request", request: { id, op, payload: decoded.right.payload } as DecodedRequest }
  }
}
