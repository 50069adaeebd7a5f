// The practical limit the egress bench compares credproxy with: a plain Node reverse proxy,
// `http` server + `https.request` + `pipe`, keep-alive to the upstream, the same CA. It checks
// nothing and adds the same header credproxy adds; it exists only to be measured against.
import { readFileSync } from "node:fs"
import http from "node:http"
import https from "node:https"

const [upstreamPort, caFile] = process.argv.slice(2)
const agent = new https.Agent({ keepAlive: true, ca: readFileSync(caFile), maxSockets: 256 })

const server = http.createServer((req, res) => {
  const headers = { ...req.headers, host: `127.0.0.1:${upstreamPort}`, "x-api-key": "sk-bench-real-key" }
  delete headers.connection
  const upstream = https.request(
    {
      host: "127.0.0.1",
      port: upstreamPort,
      method: req.method,
      path: req.url.replace(/^\/bench/, ""),
      headers,
      agent
    },
    (answer) => {
      res.writeHead(answer.statusCode, answer.headers)
      answer.pipe(res)
    }
  )
  upstream.on("error", () => res.destroy())
  res.on("close", () => {
    if (!res.writableFinished) upstream.destroy()
  })
  req.pipe(upstream)
})
server.keepAliveTimeout = 60_000
server.listen(0, "127.0.0.1", () => process.send?.({ port: server.address().port }))
process.on("disconnect", () => process.exit(0))
