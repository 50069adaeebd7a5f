import * as net from "node:net"
import * as path from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { runCli, startServe, useCliWorkspace } from "../support/cli.js"
import { egressServeArgs, PHANTOM, sandboxRequest, target, writeFile0600 } from "../support/egress.js"
import { startUpstream, type Upstream } from "../support/https-upstream.js"
import { until } from "../support/until.js"

/**
 * A hostile sandbox against the egress listener (docs/PROTOCOL.md §23), through the real binary:
 * requests shaped to reach another host, to smuggle the phantom out, to make the injected
 * credential hop-by-hop, or to hold the proxy's slots.
 */

const workspace = useCliWorkspace()
const upstreams: Array<Upstream> = []
afterEach(async () => {
  for (const upstream of upstreams.splice(0)) await upstream.close()
})

const REAL_KEY = "sk-real-key-hostile-0123456789"

const start = async () => {
  const upstream = await startUpstream((request, res) => {
    res.writeHead(200, { "content-type": "application/json" })
    res.end(JSON.stringify({ url: request.url }))
  })
  upstreams.push(upstream)
  const routes = writeFile0600(
    path.join(workspace.ws.root, "routes.json"),
    JSON.stringify({
      routes: {
        a: { upstream: upstream.origin, credential: { apiKey: "a" }, header: "x-api-key" },
        b: {
          upstream: upstream.origin,
          credential: { apiKey: "a" },
          header: "authorization",
          scheme: "Bearer"
        }
      }
    })
  )
  expect(
    (await runCli(["key", "set", "a", "--data-dir", workspace.ws.dataDir], { stdin: REAL_KEY })).code
  ).toBe(0)
  const server = await startServe([
    ...egressServeArgs(workspace.ws, routes, upstream.caFile),
    "--egress-listen",
    "127.0.0.1:0"
  ])
  return { upstream, egress: server.ready.egress! }
}

/** Sends raw bytes and reads what comes back until the connection closes or a bound passes. */
const raw = (egress: string, bytes: string): Promise<string> =>
  new Promise((resolve) => {
    const socket = net.connect(target(egress) as net.NetConnectOpts)
    let answer = ""
    socket.setEncoding("utf8")
    socket.on("data", (chunk: string) => {
      answer += chunk
      if (answer.includes("\r\n\r\n") && /content-length: (\d+)/i.test(answer)) {
        const length = Number(/content-length: (\d+)/i.exec(answer)![1])
        if (answer.length >= answer.indexOf("\r\n\r\n") + 4 + length) socket.end()
      }
    })
    socket.on("error", () => resolve(answer))
    socket.on("close", () => resolve(answer))
    socket.write(bytes)
  })

describe("hostile sandbox against the egress listener", () => {
  it("an absolute-form target naming another host is 400 and reaches nothing", async () => {
    const { upstream, egress } = await start()
    const answer = await raw(
      egress,
      `GET http://evil.example/a/v1 HTTP/1.1\r\nHost: evil.example\r\nx-api-key: ${PHANTOM}\r\nConnection: close\r\n\r\n`
    )
    expect(answer).toMatch(/^HTTP\/1\.1 400/)
    expect(upstream.started()).toBe(0)
  })

  it("listing the route header in Connection does not drop the injected credential, nor send the phantom", async () => {
    const { upstream, egress } = await start()
    const answer = await sandboxRequest(egress, {
      path: "/a/v1",
      headers: { "x-api-key": PHANTOM, connection: "keep-alive, x-api-key, x-other", "x-other": PHANTOM }
    })
    expect(answer.status).toBe(200)
    expect(upstream.received[0]!.headers["x-api-key"]).toBe(REAL_KEY)
    expect(JSON.stringify(upstream.received[0]!.headers)).not.toContain(PHANTOM)
  })

  // (Trailing spaces are not part of a header value in HTTP: Node drops them before the check.)
  it("a doubled route header, a phantom prefix or suffix, or the wrong scheme is refused", async () => {
    const { upstream, egress } = await start()
    const doubled = await raw(
      egress,
      `GET /a/v1 HTTP/1.1\r\nHost: x\r\nx-api-key: ${PHANTOM}\r\nx-api-key: ${PHANTOM}\r\nConnection: close\r\n\r\n`
    )
    expect(doubled).toMatch(/^HTTP\/1\.1 401/)
    for (const value of [
      `Basic ${PHANTOM}`,
      `Bearer  ${PHANTOM}`,
      `Bearer ${PHANTOM}x`,
      `Bearer x${PHANTOM}`,
      PHANTOM,
      "Bearer"
    ]) {
      const answer = await sandboxRequest(egress, { path: "/b/v1", headers: { authorization: value } })
      expect({ value, status: answer.status }).toEqual({ value, status: 401 })
    }
    expect(upstream.started()).toBe(0)
    const lower = await sandboxRequest(egress, {
      path: "/b/v1",
      headers: { authorization: `bearer ${PHANTOM}` }
    })
    expect(lower.status).toBe(200)
    expect(upstream.received[0]!.headers.authorization).toBe(`Bearer ${REAL_KEY}`)
  })

  it("300 connections that never send a request do not stop a good request once they go", async () => {
    const { egress } = await start()
    const sockets = Array.from({ length: 300 }, () => net.connect(target(egress) as net.NetConnectOpts))
    let closed = 0
    for (const socket of sockets) {
      socket.on("error", () => {})
      socket.on("close", () => closed++)
    }
    // Past the 256-connection bound the listener closes the excess at once.
    await until(() => closed >= 44, { what: "the connections over the bound to be closed", limitMs: 10_000 })
    for (const socket of sockets) socket.destroy()
    await until(() => closed === 300, { what: "every connection closed" })
    const good = await sandboxRequest(egress, { path: "/a/v1", headers: { "x-api-key": PHANTOM } })
    expect(good.status).toBe(200)
  })
})
