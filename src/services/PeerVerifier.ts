import type * as net from "node:net"
import * as Context from "effect/Context"

/** What the kernel says about the process at the other end of a connection. */
export type PeerCheck =
  | { readonly _tag: "Allowed"; readonly uid?: number; readonly pid?: number }
  | { readonly _tag: "Rejected"; readonly uid: number; readonly expectedUid: number; readonly pid?: number }

/**
 * Asks the kernel who connected (PROTOCOL.md §9). Called once per accepted
 * connection, before any byte of it is read; synchronous, because it is one
 * system call and a rejected peer must get nothing at all.
 */
export interface PeerVerifierShape {
  readonly verify: (socket: net.Socket) => PeerCheck
}

export class PeerVerifier extends Context.Tag("credproxy/PeerVerifier")<PeerVerifier, PeerVerifierShape>() {}
