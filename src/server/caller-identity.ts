import * as crypto from "node:crypto"

/**
 * Who a connection is, for the login sessions it starts (PROTOCOL.md §17):
 * the peer uid the kernel reported and a digest of the capability token
 * presented in the handshake (none is an identity of its own; a value that
 * is not a string counts as none). Made once, when the handshake is
 * accepted; the token itself is not kept.
 */
export const credentialDigest = (presented: unknown): string | undefined =>
  typeof presented === "string"
    ? crypto.createHash("sha256").update(presented, "utf8").digest("hex")
    : undefined

export const callerIdentity = (peerUid: number | undefined, digest: string | undefined): string =>
  `${peerUid ?? "?"}:${digest ?? "-"}`
