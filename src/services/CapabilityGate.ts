import * as crypto from "node:crypto"
import * as Context from "effect/Context"

/**
 * The second gate of PROTOCOL.md §9: a secret the inner process presents in
 * the handshake (`capabilityToken`). File mode and peer uid stop other users;
 * this stops a hostile process running as the sandbox's own user that was not
 * handed the secret.
 */
export interface CapabilityGateShape {
  /** Whether a capability token is required at all. */
  readonly required: boolean
  /** Whether the handshake's `capabilityToken` (any JSON value, or absent) opens the gate. */
  readonly admits: (presented: unknown) => boolean
}

export class CapabilityGate extends Context.Tag("credproxy/CapabilityGate")<
  CapabilityGate,
  CapabilityGateShape
>() {}

const digest = (value: string): Buffer => crypto.createHash("sha256").update(value, "utf8").digest()

/**
 * Compares in constant time: both sides are hashed first, so neither the
 * content nor the length of the secret leaks through timing. Only a string
 * equal to the secret, byte for byte, is admitted (no trimming here).
 */
export const makeCapabilityGate = (secret: string | undefined): CapabilityGateShape => {
  if (secret === undefined) return { required: false, admits: () => true }
  const expected = digest(secret)
  return {
    required: true,
    admits: (presented) =>
      typeof presented === "string" && crypto.timingSafeEqual(digest(presented), expected)
  }
}
