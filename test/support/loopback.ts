import * as net from "node:net"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"

/** Loopback ports for the tests: whether one is open, one where nothing listens, one that never answers. */

/** Whether something accepts connections on 127.0.0.1:`port`. */
export const portOpen = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1")
    socket.once("connect", () => {
      socket.destroy()
      resolve(true)
    })
    socket.once("error", () => resolve(false))
  })

/** A port on 127.0.0.1 where nothing listens (the system gave it out, and it was closed again). */
export const closedPort: Effect.Effect<number> = Effect.promise(
  () =>
    new Promise<number>((resolve) => {
      const server = net.createServer()
      server.listen(0, "127.0.0.1", () => {
        const { port } = server.address() as net.AddressInfo
        server.close(() => resolve(port))
      })
    })
)

/**
 * A provider that is there but never answers: it accepts connections on
 * 127.0.0.1 and reads nothing back, for the life of the scope. `accepted`
 * counts the connections it got.
 */
export const silentServer: Effect.Effect<
  { readonly port: number; readonly accepted: () => number },
  never,
  Scope.Scope
> = Effect.map(
  Effect.acquireRelease(
    Effect.promise(
      () =>
        new Promise<{ server: net.Server; sockets: Set<net.Socket>; count: { n: number } }>((resolve) => {
          const sockets = new Set<net.Socket>()
          const count = { n: 0 }
          const server = net.createServer((socket) => {
            count.n++
            sockets.add(socket)
            socket.on("error", () => {})
            socket.on("close", () => sockets.delete(socket))
          })
          server.listen(0, "127.0.0.1", () => resolve({ server, sockets, count }))
        })
    ),
    ({ server, sockets }) =>
      Effect.promise(
        () =>
          new Promise<void>((resolve) => {
            for (const socket of sockets) socket.destroy()
            server.close(() => resolve())
          })
      )
  ),
  ({ server, count }) => ({ port: (server.address() as net.AddressInfo).port, accepted: () => count.n })
)
