import * as net from "node:net"

/**
 * `credproxy forward` (docs/PROTOCOL.md §23): a byte pipe from a TCP port
 * inside a container to the egress Unix socket mounted into it. It reads
 * nothing, holds no secret and loads no server code: this file, `targets.ts`
 * and `main.ts` are all of it (node built-ins only).
 */

/** Connections piped at once; more are closed at once. */
export const MAX_PIPED_CONNECTIONS = 256

export interface PipeTargets {
  readonly host: string
  readonly port: number
  readonly socketPath: string
}

/** Pipes one accepted connection to a new connection to the socket, both ways, with backpressure; either end closing closes both. */
const pipeConnection = (client: net.Socket, socketPath: string) => {
  const upstream = net.connect(socketPath)
  const close = () => {
    client.destroy()
    upstream.destroy()
  }
  client.on("error", close)
  upstream.on("error", close)
  client.on("close", close)
  upstream.on("close", close)
  client.pipe(upstream)
  upstream.pipe(client)
}

/** Listens on `host:port` and pipes every connection to `socketPath`; resolves once listening, with the bound port. */
export const startBytePipe = (
  targets: PipeTargets
): Promise<{ readonly server: net.Server; readonly port: number }> =>
  new Promise((resolve, reject) => {
    const server = net.createServer((client) => pipeConnection(client, targets.socketPath))
    server.maxConnections = MAX_PIPED_CONNECTIONS
    server.once("error", reject)
    server.listen(targets.port, targets.host, () => {
      server.removeListener("error", reject)
      resolve({ server, port: (server.address() as net.AddressInfo).port })
    })
  })

/** The one line `forward` prints on stdout once it listens. */
export const forwardReadyLine = (host: string, port: number, socketPath: string): string =>
  `${JSON.stringify({ event: "forwarding", listen: `${host}:${port}`, to: `unix:${socketPath}` })}\n`
