// The in-run baseline of the benchmark: the least a plain-Node server of the
// same protocol (PROTOCOL.md §3-§6) has to do for `get_token` and
// `get_api_key`. No validation beyond what answering needs, no policy, no
// rate limit, no store: the same data as credproxy gets, held in two Maps.
//
//   node bench/baseline-server.mjs SOCKET_PATH FIXTURE_JSON
//
// FIXTURE_JSON: {"tokens": {"provider:bucket": {...token}}, "keys": {"name": "value"}}.
// Prints one ready line like `credproxy serve` does, then serves until SIGTERM/SIGINT.

import { readFileSync, rmSync } from "node:fs"
import net from "node:net"

const [socketPath, fixturePath] = process.argv.slice(2)
if (!socketPath || !fixturePath) {
  process.stderr.write("usage: node bench/baseline-server.mjs SOCKET_PATH FIXTURE_JSON\n")
  process.exit(2)
}

const sanitize = (token) => {
  const { refresh_token: _dropped, ...rest } = token
  return rest
}

const fixture = JSON.parse(readFileSync(fixturePath, "utf8"))
// Sanitized once at load; every reply still serializes the object (JSON.stringify per reply).
const tokens = new Map(Object.entries(fixture.tokens ?? {}).map(([key, token]) => [key, sanitize(token)]))
const keys = new Map(Object.entries(fixture.keys ?? {}))

const MAX_FRAME = 65536

const frame = (value) => {
  const body = Buffer.from(JSON.stringify(value), "utf8")
  const out = Buffer.allocUnsafe(4 + body.length)
  out.writeUInt32BE(body.length, 0)
  body.copy(out, 4)
  return out
}

const answer = (request) => {
  const id = request.id
  const payload = request.payload ?? {}
  switch (request.op) {
    case "get_token": {
      const token = tokens.get(`${payload.provider}:${payload.bucket ?? "default"}`)
      return token
        ? { v: 1, id, ok: true, data: token }
        : { v: 1, id, ok: false, code: "NOT_FOUND", error: "no token" }
    }
    case "get_api_key": {
      const key = keys.get(payload.name)
      return key !== undefined
        ? { v: 1, id, ok: true, data: { key } }
        : { v: 1, id, ok: false, code: "NOT_FOUND", error: "no key" }
    }
    default:
      return { v: 1, id, ok: false, code: "INVALID_REQUEST", error: "unsupported op" }
  }
}

const handshakeOk = frame({ v: 1, op: "handshake", ok: true, data: { version: 1 } })

const server = net.createServer((socket) => {
  let buffered = Buffer.alloc(0)
  let handshaken = false
  socket.on("error", () => socket.destroy())
  socket.on("data", (chunk) => {
    buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk])
    let offset = 0
    while (buffered.length - offset >= 4) {
      const length = buffered.readUInt32BE(offset)
      if (length > MAX_FRAME) {
        socket.destroy()
        return
      }
      if (buffered.length - offset - 4 < length) break
      const text = buffered.toString("utf8", offset + 4, offset + 4 + length)
      offset += 4 + length
      let request
      try {
        request = JSON.parse(text)
      } catch {
        if (!handshaken) {
          socket.destroy()
          return
        }
        socket.write(frame({ v: 1, ok: false, code: "INVALID_REQUEST", error: "bad JSON" }))
        continue
      }
      if (!handshaken) {
        if (request?.op !== "handshake") {
          socket.destroy()
          return
        }
        handshaken = true
        socket.write(handshakeOk)
        continue
      }
      socket.write(frame(answer(request)))
    }
    buffered = offset === buffered.length ? Buffer.alloc(0) : buffered.subarray(offset)
  })
})

server.maxConnections = 100_000
server.on("error", (error) => {
  process.stderr.write(`baseline server: ${error.message}\n`)
  process.exit(1)
})

rmSync(socketPath, { force: true })
server.listen(socketPath, () => {
  process.stdout.write(
    `${JSON.stringify({ event: "listening", socket: socketPath, pid: process.pid, protocolVersion: 1 })}\n`
  )
})

const stop = () => {
  rmSync(socketPath, { force: true })
  process.exit(0)
}
process.on("SIGTERM", stop)
process.on("SIGINT", stop)
