// The HTTPS upstream of the egress bench (bench/egress.mjs): a process of its own on loopback,
// with the bench's own CA. POST /small answers a small JSON after reading the body; GET /sse
// streams SIZE bytes of server-sent events (with backpressure); GET /first sends one event and ends.
import { readFileSync } from "node:fs"
import https from "node:https"

const [keyFile, certFile, sizeText] = process.argv.slice(2)
const SSE_BYTES = Number(sizeText)
const EVENT = `data: ${"x".repeat(1016)}\n\n` // 1 KiB per event
const ANSWER = JSON.stringify({ id: "msg_bench", type: "message", content: [{ type: "text", text: "ok" }] })

const server = https.createServer(
  { key: readFileSync(keyFile), cert: readFileSync(certFile) },
  (req, res) => {
    if (req.url.startsWith("/small")) {
      req.resume()
      req.on("end", () => {
        res.writeHead(200, {
          "content-type": "application/json",
          "content-length": Buffer.byteLength(ANSWER)
        })
        res.end(ANSWER)
      })
      return
    }
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" })
    if (req.url.startsWith("/first")) {
      res.end("event: first\ndata: 1\n\n")
      return
    }
    let sent = 0
    const more = () => {
      while (sent < SSE_BYTES) {
        sent += EVENT.length
        if (!res.write(EVENT)) return void res.once("drain", more)
      }
      res.end()
    }
    more()
  }
)
server.keepAliveTimeout = 60_000
server.listen(0, "127.0.0.1", () => process.send?.({ port: server.address().port }))
process.on("disconnect", () => process.exit(0))
