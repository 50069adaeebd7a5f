import * as fs from "node:fs"
import * as net from "node:net"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { errorCode } from "../errors/errors.js"
import { ServerStartError, type StartReason } from "../errors/startup.js"

/**
 * Listens on a Unix socket path as a scoped resource. The socket file is
 * created under umask 0177, so it is 0600 from the moment it exists (no window
 * in which it is wider), and chmod-ed 0600 again for good measure. Connections
 * arrive paused (`pauseOnConnect`): nothing is read before the peer check.
 * Releasing stops accepting; removing the file is the caller's last finalizer.
 */
export const listen = (
  socketPath: string,
  onConnection: (socket: net.Socket) => void
): Effect.Effect<net.Server, ServerStartError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<net.Server, ServerStartError>((resume) => {
      const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, onConnection)
      const fail = (reason: StartReason, cause: unknown) => {
        server.close()
        const detail = errorCode(cause) ?? (cause as Error).message
        resume(Effect.fail(new ServerStartError({ reason, subject: socketPath, detail, cause })))
      }
      try {
        fs.rmSync(socketPath, { force: true })
      } catch (cause) {
        return fail("StaleFile", cause)
      }
      server.once("error", (cause) => fail("Listen", cause))
      const previousUmask = process.umask(0o177)
      try {
        server.listen(socketPath, () => {
          server.removeAllListeners("error")
          server.on("error", () => {})
          try {
            fs.chmodSync(socketPath, 0o600)
          } catch (cause) {
            return fail("SocketMode", cause)
          }
          resume(Effect.succeed(server))
        })
      } finally {
        process.umask(previousUmask)
      }
    }),
    (server) => Effect.sync(() => server.close())
  )

/** Removes the socket file; missing is fine. */
export const removeSocketFile = (socketPath: string): Effect.Effect<void> =>
  Effect.sync(() => fs.rmSync(socketPath, { force: true }))
