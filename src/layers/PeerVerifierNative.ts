import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { AuditLog } from "../services/AuditLog.js"
import { type PeerCheck, PeerVerifier, type PeerVerifierShape } from "../services/PeerVerifier.js"
import { type PeerCredResult, peerCredReader, preload, socketFd } from "./native/peer-credentials.js"
import { allowAll } from "./PeerVerifierAllowAll.js"

export interface PeerVerifierOptions {
  /** Uids let in besides the server's own (PROTOCOL.md §9: "explicitly allowed at start-up"). */
  readonly allowUids: ReadonlyArray<number>
  /** The platform to behave as; defaults to `process.platform`. Lets tests reach the unsupported path. */
  readonly platform?: NodeJS.Platform
}

/** The uid reported when the kernel could not be asked: no real uid, so it never matches. */
const unknownUid = -1

/**
 * Checks each peer's uid with the kernel (SO_PEERCRED on Linux, getpeereid on
 * macOS) and fails closed: no fd or a failed call is a rejection. Elsewhere
 * there is nothing to ask, so it warns once and lets everyone in; the socket's
 * file mode is then the only gate.
 */
export const make = (options: PeerVerifierOptions): Effect.Effect<PeerVerifierShape, never, AuditLog> =>
  Effect.gen(function* () {
    const audit = yield* AuditLog
    const platform = options.platform ?? process.platform
    const ownUid = process.getuid?.()
    const read = peerCredReader(platform)

    if (read === undefined || ownUid === undefined) {
      audit.event(
        "Warning",
        "peer credentials cannot be checked on this platform; the socket's file mode is the only gate",
        { platform }
      )
      return allowAll
    }

    // Load the native code now: a broken install should be reported at start-up,
    // not discovered as a rejected first connection.
    const loadError = preload(platform)
    if (loadError !== undefined) {
      audit.event("Error", "cannot read peer credentials; every connection will be rejected", {
        platform,
        error: loadError
      })
    }

    const allowed = new Set<number>([ownUid, ...options.allowUids])

    const rejectUnknown = (reason: string, fields: Readonly<Record<string, unknown>>): PeerCheck => {
      audit.event("Warning", `peer credentials unavailable (${reason}); connection rejected`, fields)
      return { _tag: "Rejected", uid: unknownUid, expectedUid: ownUid }
    }

    const check = (result: PeerCredResult): PeerCheck => {
      if (result._tag === "Failed") {
        return rejectUnknown(
          "system call failed",
          result.errno === undefined
            ? { error: result.message }
            : { error: result.message, errno: result.errno }
        )
      }
      const pid = result.pid === undefined ? {} : { pid: result.pid }
      return allowed.has(result.uid)
        ? { _tag: "Allowed", uid: result.uid, ...pid }
        : { _tag: "Rejected", uid: result.uid, expectedUid: ownUid, ...pid }
    }

    return {
      verify: (socket) => {
        const fd = socketFd(socket)
        return fd === undefined ? rejectUnknown("no file descriptor", {}) : check(read(fd))
      }
    }
  })

export const layer = (options: PeerVerifierOptions): Layer.Layer<PeerVerifier, never, AuditLog> =>
  Layer.effect(PeerVerifier, make(options))
