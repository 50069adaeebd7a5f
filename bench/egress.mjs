// The egress case of `npm run bench` (docs/PROTOCOL.md §23): credproxy's egress proxy against a
// plain Node reverse proxy (bench/egress-baseline-proxy.mjs) on the same loopback HTTPS upstream
// (bench/egress-upstream.mjs, its own process and CA), interleaved: small POSTs at 16 concurrent
// (requests/s, p99), a 20 MB server-sent-events stream (MB/s), and the first event's latency.
// This process is the load generator; each server is a process of its own.

import { execFileSync, fork, spawn } from "node:child_process"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import http from "node:http"
import os from "node:os"
import path from "node:path"
import { performance } from "node:perf_hooks"

const PHANTOM = "bench-phantom-0123456789abcdef0123456789abcdef"
const SSE_BYTES = 20 * 1024 * 1024
const BODY = JSON.stringify({ model: "bench", max_tokens: 16, messages: [{ role: "user", content: "hi" }] })

const openssl = (...args) => execFileSync("openssl", args, { stdio: "pipe" })

const makeCertificates = (dir) => {
  const f = (name) => path.join(dir, name)
  openssl(
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-days",
    "2",
    "-subj",
    "/CN=bench CA",
    "-keyout",
    f("ca.key"),
    "-out",
    f("ca.pem")
  )
  openssl(
    "req",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-subj",
    "/CN=127.0.0.1",
    "-keyout",
    f("server.key"),
    "-out",
    f("server.csr")
  )
  writeFileSync(f("ext.cnf"), "subjectAltName=IP:127.0.0.1\n")
  openssl(
    "x509",
    "-req",
    "-in",
    f("server.csr"),
    "-CA",
    f("ca.pem"),
    "-CAkey",
    f("ca.key"),
    "-CAcreateserial",
    "-days",
    "2",
    "-extfile",
    f("ext.cnf"),
    "-out",
    f("server.pem")
  )
  return { ca: f("ca.pem"), key: f("server.key"), cert: f("server.pem") }
}

const forkReady = (file, args) =>
  new Promise((resolve, reject) => {
    const child = fork(file, args, { stdio: ["ignore", "ignore", "inherit", "ipc"] })
    child.once("message", (message) => resolve({ child, port: message.port }))
    child.once("exit", (code) => reject(new Error(`${path.basename(file)} exited (${code})`)))
  })

const startCredproxy = (bin, dataDir, routes, phantomFile, ca) =>
  new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [
        bin,
        "serve",
        "--data-dir",
        dataDir,
        "--socket-dir",
        path.join(dataDir, "s"),
        "--egress",
        routes,
        "--egress-phantom-file",
        phantomFile,
        "--egress-ca",
        ca,
        "--egress-listen",
        "127.0.0.1:0",
        "--log-level",
        "error"
      ],
      { stdio: ["ignore", "pipe", "inherit"] }
    )
    let out = ""
    child.stdout.setEncoding("utf8").on("data", (chunk) => {
      out += chunk
      if (out.includes("\n")) resolve({ child, port: Number(new URL(JSON.parse(out).egress).port) })
    })
    child.once("exit", (code) => reject(new Error(`credproxy serve exited (${code})`)))
  })

const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]

/** 16 closed loops of small POSTs for `seconds` after `warmup`: requests/s and p99 (ms). */
const smallPosts = async (port, seconds, warmup) => {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 16 })
  const latencies = []
  let counting = false
  let stop = false
  const one = () =>
    new Promise((resolve, reject) => {
      const started = performance.now()
      const req = http.request(
        {
          host: "127.0.0.1",
          port,
          method: "POST",
          path: "/bench/small",
          agent,
          headers: {
            "content-type": "application/json",
            "x-api-key": PHANTOM,
            "content-length": Buffer.byteLength(BODY)
          }
        },
        (res) => {
          res.resume()
          res.on("end", () => {
            if (res.statusCode !== 200) return reject(new Error(`status ${res.statusCode}`))
            if (counting) latencies.push(performance.now() - started)
            resolve()
          })
        }
      )
      req.on("error", reject)
      req.end(BODY)
    })
  const loop = async () => {
    while (!stop) await one()
  }
  const loops = Array.from({ length: 16 }, loop)
  await new Promise((r) => setTimeout(r, warmup * 1000))
  counting = true
  const started = performance.now()
  await new Promise((r) => setTimeout(r, seconds * 1000))
  counting = false
  const elapsed = (performance.now() - started) / 1000
  stop = true
  await Promise.all(loops)
  agent.destroy()
  latencies.sort((a, b) => a - b)
  return { rps: latencies.length / elapsed, p99: percentile(latencies, 99) }
}

/** One GET read to its end: MB/s over the whole stream, and ms to the first body byte. */
const stream = (port, route) =>
  new Promise((resolve, reject) => {
    const started = performance.now()
    let first
    let bytes = 0
    const req = http.request(
      { host: "127.0.0.1", port, path: `/bench/${route}`, headers: { "x-api-key": PHANTOM }, agent: false },
      (res) => {
        res.on("data", (chunk) => {
          first ??= performance.now() - started
          bytes += chunk.length
        })
        res.on("end", () =>
          resolve({ mbps: bytes / 1e6 / ((performance.now() - started) / 1000), firstMs: first, bytes })
        )
      }
    )
    req.on("error", reject)
    req.end()
  })

/** The first event's latency: the median of `count` sequential requests, each on a fresh connection. */
const firstEvent = async (port, count) => {
  const values = []
  for (let i = 0; i < count; i++) values.push((await stream(port, "first")).firstMs)
  return median(values)
}

/** Runs the egress case; `bin` is bin/credproxy.mjs. Returns per-server medians and the ratios. */
export const measureEgress = async ({ bin, repeats, duration, warmup, log }) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "cp-egress-bench-"))
  const children = []
  try {
    const certs = makeCertificates(dir)
    const here = path.dirname(new URL(import.meta.url).pathname)
    const upstream = await forkReady(path.join(here, "egress-upstream.mjs"), [
      certs.key,
      certs.cert,
      String(SSE_BYTES)
    ])
    children.push(upstream.child)
    const dataDir = path.join(dir, "data")
    execFileSync(process.execPath, [bin, "key", "set", "bench", "--data-dir", dataDir], {
      input: "sk-bench-real-key"
    })
    const routes = path.join(dir, "routes.json")
    writeFileSync(
      routes,
      JSON.stringify({
        routes: {
          bench: {
            upstream: `https://127.0.0.1:${upstream.port}`,
            credential: { apiKey: "bench" },
            header: "x-api-key"
          }
        }
      })
    )
    const phantomFile = path.join(dir, "phantom")
    writeFileSync(phantomFile, PHANTOM, { mode: 0o600 })
    const baseline = await forkReady(path.join(here, "egress-baseline-proxy.mjs"), [
      String(upstream.port),
      certs.ca
    ])
    children.push(baseline.child)
    const credproxy = await startCredproxy(bin, dataDir, routes, phantomFile, certs.ca)
    children.push(credproxy.child)
    const servers = { baseline: baseline.port, credproxy: credproxy.port }
    // Warm both up (JIT, connection pools) before anything counts.
    for (const kind of Object.keys(servers)) {
      log(`bench: egress ${kind} warm-up`)
      await smallPosts(servers[kind], Math.max(1, duration / 2), warmup)
      await stream(servers[kind], "sse")
      await firstEvent(servers[kind], 50)
    }
    const runs = { baseline: [], credproxy: [] }
    for (let repeat = 0; repeat < repeats; repeat++) {
      const order = repeat % 2 === 0 ? ["baseline", "credproxy"] : ["credproxy", "baseline"]
      for (const kind of order) {
        log(`bench: egress ${kind} (repeat ${repeat + 1}/${repeats})`)
        const small = await smallPosts(servers[kind], duration, warmup)
        const sse = await stream(servers[kind], "sse")
        if (sse.bytes < SSE_BYTES) throw new Error(`${kind}: the stream ended after ${sse.bytes} bytes`)
        const first = await firstEvent(servers[kind], 100)
        runs[kind].push({ rps: small.rps, p99: small.p99, mbps: sse.mbps, firstMs: first })
      }
    }
    const summary = {}
    for (const kind of Object.keys(runs)) {
      summary[kind] = Object.fromEntries(
        ["rps", "p99", "mbps", "firstMs"].map((k) => [k, median(runs[kind].map((r) => r[k]))])
      )
    }
    const ratios = {
      rps: summary.credproxy.rps / summary.baseline.rps,
      p99: summary.credproxy.p99 / summary.baseline.p99,
      mbps: summary.credproxy.mbps / summary.baseline.mbps,
      firstEventDeltaMs: summary.credproxy.firstMs - summary.baseline.firstMs
    }
    return { runs, summary, ratios }
  } finally {
    for (const child of children) child.kill("SIGTERM")
    rmSync(dir, { recursive: true, force: true })
  }
}

/** The egress lines of the report. */
export const printEgress = ({ summary, ratios }) => {
  const f = (n, d = 1) => n.toFixed(d)
  const lines = [
    "",
    "Egress (credproxy ÷ plain Node reverse proxy, same HTTPS upstream, medians)",
    `  small POSTs, 16 concurrent: ${f(summary.credproxy.rps, 0)} vs ${f(summary.baseline.rps, 0)} req/s = ${f(ratios.rps, 2)}×; p99 ${f(summary.credproxy.p99, 2)} vs ${f(summary.baseline.p99, 2)} ms = ${f(ratios.p99, 2)}×`,
    `  20 MB SSE stream: ${f(summary.credproxy.mbps)} vs ${f(summary.baseline.mbps)} MB/s = ${f(ratios.mbps, 2)}×`,
    `  first event: ${f(summary.credproxy.firstMs, 2)} vs ${f(summary.baseline.firstMs, 2)} ms (${ratios.firstEventDeltaMs >= 0 ? "+" : ""}${f(ratios.firstEventDeltaMs, 2)} ms)`
  ]
  process.stdout.write(`${lines.join("\n")}\n`)
}
