import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import { InvalidRequest, type ProxyError, Stopping, Unauthorized, UnknownVersion } from "../errors/errors.js"
import { HandshakeFrame } from "../protocol/handshake.js"
import { fieldIssueOf } from "../protocol/parse-issue.js"
import type { CapabilityGateShape } from "../services/CapabilityGate.js"
import { credentialDigest } from "./caller-identity.js"
import { parseJsonObject } from "./read-request.js"
import type { RejectReason } from "./rejections.js"

/** What the first frame of a connection decides (PROTOCOL.md §4, §14). */
export type HandshakeRead =
  /** Not a JSON object: closed without an answer (§3). */
  | { readonly _tag: "Dropped" }
  /** Answered with `error`, then closed; `reject` is counted. */
  | { readonly _tag: "Refused"; readonly reject: RejectReason; readonly error: ProxyError }
  /** `credential`: a digest of the capability token presented (for the caller's identity, §17), if any. */
  | { readonly _tag: "Accepted"; readonly version: number; readonly credential: string | undefined }

const DROPPED: HandshakeRead = { _tag: "Dropped" }
/** Every handshake once the server has begun to stop (§21). */
export const STOPPING: HandshakeRead = { _tag: "Refused", reject: "stopping", error: new Stopping() }
const WRONG_CAPABILITY: HandshakeRead = {
  _tag: "Refused",
  reject: "capability_token",
  error: new Unauthorized({ reason: "CapabilityToken" })
}

const decodeHandshake = Schema.decodeUnknownEither(HandshakeFrame)

/**
 * Reads a handshake in the order of §14: a JSON object, the frame's shape,
 * the version range (the highest version both sides speak), then the
 * capability token. The frame's own `v` is not checked.
 */
export const readHandshake = (
  bytes: Buffer,
  versions: { readonly min: number; readonly max: number },
  capability: CapabilityGateShape
): HandshakeRead => {
  const message = parseJsonObject(bytes)
  if (message === undefined) return DROPPED
  const decoded = decodeHandshake(message)
  if (Either.isLeft(decoded)) {
    const error = new InvalidRequest({ reason: "InvalidHandshake", issue: fieldIssueOf(decoded.left) })
    return { _tag: "Refused", reject: "bad_handshake", error }
  }
  const { minVersion, maxVersion, capabilityToken } = decoded.right.payload
  const version = Math.min(maxVersion, versions.max)
  if (version < Math.max(minVersion, versions.min)) {
    return {
      _tag: "Refused",
      reject: "unknown_version",
      error: new UnknownVersion({ minVersion, maxVersion })
    }
  }
  if (!capability.admits(capabilityToken)) return WRONG_CAPABILITY
  return { _tag: "Accepted", version, credential: credentialDigest(capabilityToken) }
}
