// Closed-loop load generator for the credproxy protocol (PROTOCOL.md §3-§6).
//
// C connections each complete the handshake, then keep K requests in flight:
// every answer that arrives is matched by `id`, its latency recorded, and a new
// request sent at once. Responses that complete inside the measuring window
// (after the warm-up) count; every response is checked, and anything that is
// not the expected success counts as an error.
//
// Use it as a module (`runLoad`, `openIdle`), as a forked child driven over IPC
// (what bench/run.mjs does, so the load and the server never share an event
// loop), or from the command line:
//
//   node bench/load.mjs --socket PATH [--connections 8] [--inflight 16]
//     [--op get_token|get_api_key] [--duration 2] [--warmup 0.5] [--server-pid N]
//   node bench/load.mjs --socket PATH --idle 1000      # open, hold 1 s, report

import { readFileSync } from "node:fs"
import net from "node:net"
import { performance } from "node:perf_hooks"
import { pathToFileURL } from "node:url"

// ---------------------------------------------------------------------------
// Histogram: log-linear buckets over integer microseconds (HDR-style, 128
// sub-buckets per power of two: < 0.8 % relative error, constant memory).

const SUB_BITS = 7
const SUB = 1 << SUB_BITS
const BUCKETS = (32 - SUB_BITS + 1) * SUB

export class Histogram {
  constructor() {
    this.counts = new Float64Array(BUCKETS)
    this.total = 0
    this.sum = 0
    this.max = 0
    this.min = Number.POSITIVE_INFINITY
  }

  static indexOf(us) {
    const v = us < 0 ? 0 : us > 0x7fffffff ? 0x7fffffff : Math.floor(us)
    if (v < 2 * SUB) return v
    const shift = 31 - Math.clz32(v) - SUB_BITS
    return (shift + 1) * SUB + ((v >>> shift) - SUB)
  }

  /** The midpoint (µs) of the values that land in bucket `index`. */
  static valueOf(index) {
    if (index < 2 * SUB) return index
    const shift = Math.floor(index / SUB) - 1
    const sub = (index % SUB) + SUB
    return ((sub << shift) + ((sub + 1) << shift) - 1) / 2
  }

  record(us) {
    this.counts[Histogram.indexOf(us)] += 1
    this.total += 1
    this.sum += us
    if (us > this.max) this.max = us
    if (us < this.min) this.min = us
  }

  /** The value at quantile q (0..1), in µs. */
  quantile(q) {
    if (this.total === 0) return Number.NaN
    const rank = Math.max(1, Math.ceil(q * this.total))
    let seen = 0
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i]
      if (seen >= rank) return Math.min(Histogram.valueOf(i), this.max)
    }
    return this.max
  }

  summary() {
    return {
      count: this.total,
      meanUs: this.total ? this.sum / this.total : Number.NaN,
      minUs: this.total ? this.min : Number.NaN,
      p50Us: this.quantile(0.5),
      p90Us: this.quantile(0.9),
      p99Us: this.quantile(0.99),
      p999Us: this.quantile(0.999),
      maxUs: this.total ? this.max : Number.NaN
    }
  }
}

// ---------------------------------------------------------------------------
// Frames

const encode = (text) => {
  const length = Buffer.byteLength(text, "utf8")
  const out = Buffer.allocUnsafe(4 + length)
  out.writeUInt32BE(length, 0)
  out.write(text, 4, "utf8")
  return out
}

/** Feeds chunks, calls `onFrame(text)` per complete frame; keeps the rest. */
const frameReader = (onFrame) => {
  let buffered = Buffer.alloc(0)
  return (chunk) => {
    buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk])
    let offset = 0
    while (buffered.length - offset >= 4) {
      const length = buffered.readUInt32BE(offset)
      if (buffered.length - offset - 4 < length) break
      onFrame(buffered.toString("utf8", offset + 4, offset + 4 + length))
      offset += 4 + length
    }
    buffered = offset === buffered.length ? Buffer.alloc(0) : buffered.subarray(offset)
  }
}

const HANDSHAKE = encode(JSON.stringify({ v: 1, op: "handshake", payload: { minVersion: 1, maxVersion: 1 } }))

/** Connects and completes the handshake; resolves to the socket, ready for requests. */
export const connect = (socketPath, timeoutMs = 5000) =>
  new Promise((resolve, reject) => {
    const socket = net.createConnection(socketPath)
    let done = false
    const finish = (error) => {
      if (done) return
      done = true
      clearTimeout(timer)
      socket.removeAllListeners("data")
      socket.removeListener("error", onError)
      socket.removeListener("close", onClose)
      if (error) {
        socket.destroy()
        reject(error)
      } else resolve(socket)
    }
    const timer = setTimeout(() => finish(new Error("handshake timed out")), timeoutMs)
    const onError = (error) => finish(error)
    const onClose = () => finish(new Error("closed before the handshake completed"))
    socket.on("error", onError)
    socket.on("close", onClose)
    socket.on("connect", () => socket.write(HANDSHAKE))
    socket.on(
      "data",
      frameReader((text) => {
        let reply
        try {
          reply = JSON.parse(text)
        } catch {
          return finish(new Error("handshake reply is not JSON"))
        }
        if (reply.op === "handshake" && reply.ok === true && reply.data?.version === 1) finish()
        else finish(new Error(`handshake refused: ${text.slice(0, 200)}`))
      })
    )
  })

/** Runs `tasks` (functions returning promises) with at most `limit` at once. */
const pool = async (tasks, limit) => {
  const results = new Array(tasks.length)
  let next = 0
  const worker = async () => {
    while (next < tasks.length) {
      const i = next++
      try {
        results[i] = { ok: true, value: await tasks[i]() }
      } catch (error) {
        results[i] = { ok: false, error }
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker))
  return results
}

// ---------------------------------------------------------------------------
// Server CPU (from /proc): utime + stime in clock ticks, 100 per second on Linux.

const CLOCK_TICKS = 100
const serverCpuMs = (pid) => {
  if (!pid) return undefined
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS
  } catch {
    return undefined
  }
}

// ---------------------------------------------------------------------------
// The load

const REQUESTS = {
  get_token: (expect) => ({
    payload: { provider: "anthropic" },
    check: (data) =>
      data !== null &&
      typeof data === "object" &&
      !("refresh_token" in data) &&
      (expect === undefined ? typeof data.access_token === "string" : data.access_token === expect)
  }),
  get_api_key: (expect) => ({
    payload: { name: "openai" },
    check: (data) =>
      data !== null && (expect === undefined ? typeof data.key === "string" : data.key === expect)
  })
}

/**
 * Runs the closed loop and resolves to throughput, latency quantiles (µs) and
 * error counts.
 *
 * @param {{socket: string, connections?: number, inflight?: number, op?: string,
 *   durationMs?: number, warmupMs?: number, expect?: string, payload?: object, serverPid?: number}} options
 */
export const runLoad = async (options) => {
  const {
    socket: socketPath,
    connections = 1,
    inflight = 1,
    op = "get_token",
    durationMs = 2000,
    warmupMs = 500,
    expect,
    serverPid
  } = options
  const spec = REQUESTS[op]?.(expect) ?? { payload: options.payload ?? {}, check: () => true }
  const payload = options.payload ?? spec.payload
  const head = '{"v":1,"id":"'
  const tail = `","op":${JSON.stringify(op)},"payload":${JSON.stringify(payload)}}`

  const connectStart = performance.now()
  const opened = await pool(
    Array.from({ length: connections }, () => () => connect(socketPath)),
    64
  )
  const connectMs = performance.now() - connectStart
  const failedConnects = opened.filter((r) => !r.ok)
  const sockets = opened.filter((r) => r.ok).map((r) => r.value)

  const histogram = new Histogram()
  const errors = {
    connect: failedConnects.length,
    notOk: 0,
    badData: 0,
    badJson: 0,
    unmatched: 0,
    disconnects: 0,
    lost: 0
  }
  const errorSamples = failedConnects.slice(0, 3).map((r) => String(r.error?.message ?? r.error))
  const sample = (text) => {
    if (errorSamples.length < 5) errorSamples.push(text.slice(0, 300))
  }

  const t0 = performance.now()
  const measureStart = t0 + warmupMs
  const measureEnd = measureStart + durationMs
  let running = true
  let completedInWindow = 0
  let completedTotal = 0
  let cpuAtStart
  const startCpu = setTimeout(() => {
    cpuAtStart = { server: serverCpuMs(serverPid), self: process.cpuUsage(), at: performance.now() }
  }, warmupMs)

  const states = sockets.map((socket, index) => {
    const pending = new Map()
    let nextId = 0
    const prefix = `${index.toString(36)}-`
    const send = () => {
      const id = prefix + (nextId++).toString(36)
      pending.set(id, performance.now())
      socket.write(encode(head + id + tail))
    }
    const state = { socket, pending, closed: false, completedInWindow: 0 }
    const feed = frameReader((text) => {
      const now = performance.now()
      let reply
      try {
        reply = JSON.parse(text)
      } catch {
        errors.badJson += 1
        sample(text)
        return
      }
      const started = pending.get(reply.id)
      if (started === undefined) {
        errors.unmatched += 1
        sample(text)
        return
      }
      pending.delete(reply.id)
      completedTotal += 1
      if (reply.ok !== true) {
        errors.notOk += 1
        sample(text)
      } else if (!spec.check(reply.data)) {
        errors.badData += 1
        sample(text)
      }
      if (now >= measureStart && now < measureEnd) {
        completedInWindow += 1
        state.completedInWindow += 1
        histogram.record((now - started) * 1000)
      }
      if (running && now < measureEnd) send()
    })
    // The requests sent in answer to one chunk go out in one write.
    socket.on("data", (chunk) => {
      socket.cork()
      feed(chunk)
      socket.uncork()
    })
    socket.on("error", () => {})
    socket.on("close", () => {
      state.closed = true
      if (running) {
        errors.disconnects += 1
        errors.lost += pending.size
        pending.clear()
      }
    })
    // Several requests per write while the loop runs: cork the initial burst.
    socket.cork()
    for (let i = 0; i < inflight; i++) send()
    process.nextTick(() => socket.uncork())
    return state
  })

  await new Promise((resolve) => setTimeout(resolve, Math.max(0, measureEnd - performance.now())))
  const cpuAtEnd = { server: serverCpuMs(serverPid), self: process.cpuUsage(), at: performance.now() }
  clearTimeout(startCpu)
  running = false

  // Drain: every request sent must still be answered.
  const drainDeadline = performance.now() + 5000
  while (states.some((s) => !s.closed && s.pending.size > 0) && performance.now() < drainDeadline) {
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
  for (const s of states) {
    errors.lost += s.pending.size
    s.socket.destroy()
  }

  const windowMs = durationMs
  const cpu =
    cpuAtStart && cpuAtEnd
      ? {
          serverMs:
            cpuAtStart.server !== undefined && cpuAtEnd.server !== undefined
              ? cpuAtEnd.server - cpuAtStart.server
              : undefined,
          loadMs:
            (cpuAtEnd.self.user + cpuAtEnd.self.system - cpuAtStart.self.user - cpuAtStart.self.system) /
            1000,
          windowMs: cpuAtEnd.at - cpuAtStart.at
        }
      : undefined
  const totalErrors = Object.values(errors).reduce((a, b) => a + b, 0)
  const perConnection = states.map((s) => s.completedInWindow)
  return {
    op,
    connections,
    inflight,
    opened: sockets.length,
    connectMs,
    windowMs,
    requests: completedInWindow,
    completedTotal,
    throughput: (completedInWindow * 1000) / windowMs,
    latency: histogram.summary(),
    // Fairness: answers per connection in the window (min/max over connections).
    perConnection: { min: Math.min(...perConnection), max: Math.max(...perConnection) },
    serverCpuUsPerRequest:
      cpu?.serverMs !== undefined && completedInWindow > 0
        ? (cpu.serverMs * 1000 * (windowMs / cpu.windowMs)) / completedInWindow
        : undefined,
    cpu,
    errors,
    totalErrors,
    errorSamples
  }
}

/**
 * Opens `count` handshaken connections (at most `concurrency` connecting at
 * once) and keeps them open. Returns counts and `close()`.
 */
export const openIdle = async ({ socket: socketPath, count, concurrency = 64 }) => {
  const startedAt = performance.now()
  const results = await pool(
    Array.from({ length: count }, () => () => connect(socketPath)),
    concurrency
  )
  const sockets = results.filter((r) => r.ok).map((r) => r.value)
  const failures = results.filter((r) => !r.ok)
  const holder = { closedByServer: 0, closing: false }
  for (const s of sockets) {
    s.on("error", () => {})
    s.on("close", () => {
      if (!holder.closing) holder.closedByServer += 1
    })
    s.on("data", () => {})
  }
  return {
    opened: sockets.length,
    failed: failures.length,
    failureSamples: [...new Set(failures.map((f) => String(f.error?.message ?? f.error)))].slice(0, 3),
    openMs: performance.now() - startedAt,
    closedByServer: () => holder.closedByServer,
    close: () => {
      holder.closing = true
      for (const s of sockets) s.destroy()
    }
  }
}

// ---------------------------------------------------------------------------
// Entry points: IPC child (forked by run.mjs) or command line.

const serveIpc = () => {
  let idle
  process.on("message", async (message) => {
    try {
      if (message.type === "load") {
        process.send({ type: "result", result: await runLoad(message.options) })
      } else if (message.type === "idle") {
        idle = await openIdle(message.options)
        process.send({
          type: "idle-open",
          opened: idle.opened,
          failed: idle.failed,
          failureSamples: idle.failureSamples,
          openMs: idle.openMs
        })
      } else if (message.type === "idle-close") {
        const closedByServer = idle?.closedByServer() ?? 0
        idle?.close()
        idle = undefined
        process.send({ type: "idle-closed", closedByServer })
      } else if (message.type === "exit") {
        process.exit(0)
      }
    } catch (error) {
      process.send({ type: "error", message: String(error?.stack ?? error) })
    }
  })
  process.on("disconnect", () => process.exit(0))
  process.send({ type: "ready" })
}

const parseArgs = (argv) => {
  const args = {}
  for (let i = 0; i < argv.length; i++) {
    const name = argv[i].replace(/^--/, "")
    args[name] = argv[i + 1]
    i++
  }
  return args
}

const runCli = async () => {
  const args = parseArgs(process.argv.slice(2))
  if (!args.socket) {
    process.stderr.write(
      "usage: node bench/load.mjs --socket PATH [--connections C] [--inflight K] [--op OP] [--duration S] [--warmup S] [--server-pid N] | --idle N\n"
    )
    process.exit(2)
  }
  if (args.idle) {
    const idle = await openIdle({ socket: args.socket, count: Number(args.idle) })
    await new Promise((resolve) => setTimeout(resolve, 1000))
    const closedByServer = idle.closedByServer()
    idle.close()
    process.stdout.write(
      `${JSON.stringify({ opened: idle.opened, failed: idle.failed, failureSamples: idle.failureSamples, closedByServer })}\n`
    )
    return
  }
  const result = await runLoad({
    socket: args.socket,
    connections: Number(args.connections ?? 1),
    inflight: Number(args.inflight ?? 1),
    op: args.op ?? "get_token",
    durationMs: Number(args.duration ?? 2) * 1000,
    warmupMs: Number(args.warmup ?? 0.5) * 1000,
    serverPid: args["server-pid"] ? Number(args["server-pid"]) : undefined
  })
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`)
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  if (process.send) serveIpc()
  else
    runCli().catch((error) => {
      process.stderr.write(`${error?.stack ?? error}\n`)
      process.exit(1)
    })
}
