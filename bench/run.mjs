// Benchmark: credproxy against a minimal plain-Node server of the same protocol
// (bench/baseline-server.mjs), interleaved on the same cases in one run, so the
// ratios say what credproxy costs over the least the protocol needs on this
// machine today. See bench/README.md.
//
//   npm run bench [-- --quick] [-- --repeats N --duration S --warmup S --spawns N --idle-connections N]
//   npm run bench -- --store keyring   # also credproxy on the OS keyring store (a private gnome-keyring)

import { execFileSync, fork, spawn, spawnSync } from "node:child_process"
import { createHash } from "node:crypto"
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs"
import os from "node:os"
import path from "node:path"
import { performance } from "node:perf_hooks"
import { fileURLToPath } from "node:url"
import { measureEgress, printEgress } from "./egress.mjs"

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
const BIN = path.join(ROOT, "bin", "credproxy.mjs")
const DIST_CLI = path.join(ROOT, "dist", "cli.js")
const BASELINE = path.join(ROOT, "bench", "baseline-server.mjs")
const LOAD = path.join(ROOT, "bench", "load.mjs")
const RESULTS_DIR = path.join(ROOT, "bench", "results")

let CASES = [
  { connections: 1, inflight: 1 },
  { connections: 8, inflight: 1 },
  { connections: 8, inflight: 16 },
  { connections: 64, inflight: 4 }
]
let OPS = ["get_token", "get_api_key"]
/** The servers of this run; `before` (another build, `--compare DIR`) joins when given. */
let SERVERS = ["baseline", "credproxy"]
const binOf = (kind) => (kind === "before" ? path.join(COMPARE_DIR, "bin", "credproxy.mjs") : BIN)
let COMPARE_DIR
/** The environment of the `keyring` server (`--store keyring`): its private Secret Service's bus. */
let KEYRING_ENV
/** Rotates the order of the servers per step, so none always runs first or last. */
const rotated = (step) => SERVERS.map((_, i) => SERVERS[(i + step) % SERVERS.length])
const SPREAD_WARN = 0.15

const TOKEN = {
  access_token: "a-bench-0123456789abcdef0123456789abcdef",
  expiry: 2000000000,
  token_type: "Bearer",
  refresh_token: "r-bench-never-served"
}
const API_KEY = "sk-bench-0123456789abcdef0123456789abcdef"

// ---------------------------------------------------------------------------
// Options

const parseOptions = (argv) => {
  const options = {
    quick: false,
    repeats: 3,
    duration: 2,
    warmup: 0.5,
    spawns: 10,
    idleConnections: 1000,
    compare: undefined,
    store: "file",
    egress: true,
    egressOnly: false
  }
  const numeric = {
    "--repeats": "repeats",
    "--duration": "duration",
    "--warmup": "warmup",
    "--spawns": "spawns",
    "--idle-connections": "idleConnections"
  }
  const given = new Set()
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    if (arg === "--quick") options.quick = true
    else if (arg === "--cases") {
      const wanted = String(argv[++i]).split(",")
      CASES = CASES.filter((c) => wanted.includes(`${c.connections}x${c.inflight}`))
      if (CASES.length === 0) throw new Error("--cases takes case names such as 8x1,64x4")
    } else if (arg === "--ops") {
      const wanted = String(argv[++i]).split(",")
      OPS = OPS.filter((op) => wanted.includes(op))
      if (OPS.length === 0) throw new Error("--ops takes get_token and/or get_api_key")
    } else if (arg === "--compare") {
      const dir = argv[++i]
      if (!dir || !existsSync(path.join(dir, "bin", "credproxy.mjs"))) {
        throw new Error(
          "--compare needs the directory of another built credproxy checkout (with bin/credproxy.mjs)"
        )
      }
      options.compare = path.resolve(dir)
    } else if (arg === "--status-watch") {
      options.statusWatch = true
    } else if (arg === "--egress-only") {
      options.egressOnly = true
    } else if (arg === "--no-egress") {
      options.egress = false
    } else if (arg === "--store") {
      options.store = argv[++i]
      if (options.store !== "file" && options.store !== "keyring")
        throw new Error("--store takes file or keyring")
    } else if (arg === "--help" || arg === "-h") {
      process.stdout.write(
        "usage: npm run bench -- [--quick] [--repeats N] [--duration S] [--warmup S] [--spawns N] [--idle-connections N] [--cases 1x1,8x1,...] [--ops get_token,get_api_key] [--compare DIR] [--store keyring] [--status-watch] [--egress-only | --no-egress]\n"
      )
      process.exit(0)
    } else if (numeric[arg]) {
      const value = Number(argv[++i])
      if (!Number.isFinite(value) || value < 0) throw new Error(`${arg} needs a number`)
      options[numeric[arg]] = value
      given.add(numeric[arg])
    } else throw new Error(`unknown option ${arg}`)
  }
  if (options.quick) {
    if (!given.has("repeats")) options.repeats = 1
    if (!given.has("duration")) options.duration = 1
    if (!given.has("spawns")) options.spawns = 3
  }
  options.repeats = Math.max(1, Math.floor(options.repeats))
  options.spawns = Math.max(1, Math.floor(options.spawns))
  return options
}

// ---------------------------------------------------------------------------
// Child processes: every one is tracked and killed when the run ends, however it ends.

const children = new Set()

const track = (child) => {
  children.add(child)
  child.on("exit", () => children.delete(child))
  return child
}

const killAll = (signal = "SIGKILL") => {
  for (const child of children) {
    try {
      child.kill(signal)
    } catch {}
  }
}

let tempDir
/** The private D-Bus session of `--store keyring` (its own process group). */
let keyringSession
const cleanupSync = () => {
  killAll("SIGKILL")
  if (keyringSession) {
    try {
      process.kill(-keyringSession.pid, "SIGKILL")
    } catch {}
    keyringSession = undefined
  }
  if (tempDir) rmSync(tempDir, { recursive: true, force: true })
  tempDir = undefined
}
process.on("exit", cleanupSync)
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(signal, () => {
    process.stderr.write(`\nbench: ${signal}, stopping\n`)
    cleanupSync()
    process.exit(130)
  })
}

const waitExit = (child, timeoutMs) =>
  new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      resolve({ code: child.exitCode, signal: child.signalCode, timedOut: false })
      return
    }
    const timer = setTimeout(() => resolve({ code: null, signal: null, timedOut: true }), timeoutMs)
    child.once("exit", (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, timedOut: false })
    })
  })

// ---------------------------------------------------------------------------
// Small helpers

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const median = (xs) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b)
  if (s.length === 0) return Number.NaN
  const mid = Math.floor(s.length / 2)
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2
}
const spreadOf = (xs) => {
  const m = median(xs)
  return xs.length > 1 && m > 0 ? (Math.max(...xs) - Math.min(...xs)) / m : 0
}

const rssKb = (pid) => {
  try {
    const match = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))
    return match ? Number(match[1]) : Number.NaN
  } catch {
    return Number.NaN
  }
}

const openFileLimit = () => {
  try {
    const line = readFileSync("/proc/self/limits", "utf8")
      .split("\n")
      .find((l) => l.startsWith("Max open files"))
    const soft = line?.trim().split(/\s+/)[3]
    return soft === "unlimited" ? Number.POSITIVE_INFINITY : Number(soft)
  } catch {
    return Number.NaN
  }
}

const fileHash = (file) => {
  try {
    return createHash("sha256").update(readFileSync(file)).digest("hex").slice(0, 12)
  } catch {
    return undefined
  }
}

const gitInfo = () => {
  try {
    const head = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: ROOT, encoding: "utf8" }).trim()
    const dirty = execFileSync("git", ["status", "--porcelain", "src"], { cwd: ROOT, encoding: "utf8" })
      .split("\n")
      .filter(Boolean).length
    return { head, dirtySrcFiles: dirty }
  } catch {
    return undefined
  }
}

const log = (text) => process.stderr.write(`${text}\n`)

// ---------------------------------------------------------------------------
// Setup: a temp data dir with the same token and key for both servers.

const runCli = (args, input, env) => {
  const result = spawnSync(process.execPath, [BIN, ...args], {
    cwd: ROOT,
    input,
    encoding: "utf8",
    env: { ...process.env, ...env }
  })
  if (result.status !== 0) {
    throw new Error(`credproxy ${args.join(" ")} failed (${result.status}): ${result.stderr}`)
  }
}

// A private Secret Service: gnome-keyring-daemon (unlocked with a random password) inside its own
// dbus-run-session, as the tests start it. Resolves with the bus address.
const startSecretService = (home) =>
  new Promise((resolve, reject) => {
    const script = [
      'printf %s "$KEYRING_PASSWORD" | gnome-keyring-daemon --foreground --unlock --components=secrets >/dev/null 2>&1 &',
      "i=0",
      "until dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus.NameHasOwner string:org.freedesktop.secrets 2>/dev/null | grep -q true; do",
      "  i=$((i+1)); [ $i -gt 200 ] && exit 3; sleep 0.05",
      "done",
      'echo "$DBUS_SESSION_BUS_ADDRESS"',
      "exec cat >/dev/null"
    ].join("\n")
    mkdirSync(path.join(home, "run"), { recursive: true, mode: 0o700 })
    const child = spawn("dbus-run-session", ["--", "sh", "-c", script], {
      detached: true,
      stdio: ["pipe", "pipe", "ignore"],
      env: {
        PATH: process.env.PATH,
        HOME: home,
        XDG_DATA_HOME: path.join(home, "data"),
        XDG_RUNTIME_DIR: path.join(home, "run"),
        KEYRING_PASSWORD: createHash("sha256").update(String(Math.random())).digest("hex")
      }
    })
    keyringSession = child
    let out = ""
    child.stdout.setEncoding("utf8").on("data", (text) => {
      out += text
      if (out.includes("\n")) resolve(out.split("\n")[0])
    })
    child.on("error", (error) =>
      reject(new Error(`--store keyring needs dbus and gnome-keyring: ${error.message}`))
    )
    child.on("exit", (code) => reject(new Error(`the private Secret Service did not start (${code})`)))
  })

const prepare = async (options) => {
  if (!existsSync(DIST_CLI)) {
    log("bench: dist/cli.js missing, building")
    const result = spawnSync(process.execPath, [path.join(ROOT, "scripts", "build.mjs")], {
      cwd: ROOT,
      stdio: "inherit"
    })
    if (result.status !== 0) throw new Error("build failed")
  }
  tempDir = mkdtempSync(path.join(os.tmpdir(), "credproxy-bench-"))
  const dataDir = path.join(tempDir, "data")
  const socketDir = path.join(tempDir, "sock")
  mkdirSync(dataDir, { mode: 0o700 })
  mkdirSync(socketDir, { mode: 0o700 })
  runCli(["token", "import", "anthropic", "--data-dir", dataDir], JSON.stringify(TOKEN))
  runCli(["key", "set", "openai", "--data-dir", dataDir], API_KEY)
  if (options.store === "keyring") {
    const address = await startSecretService(path.join(tempDir, "keyring-home"))
    KEYRING_ENV = { DBUS_SESSION_BUS_ADDRESS: address }
    const keyring = ["--store", "keyring", "--data-dir", dataDir]
    runCli(["token", "import", "anthropic", ...keyring], JSON.stringify(TOKEN), KEYRING_ENV)
    runCli(["key", "set", "openai", ...keyring], API_KEY, KEYRING_ENV)
  }
  const fixture = path.join(tempDir, "baseline-fixture.json")
  writeFileSync(
    fixture,
    JSON.stringify({ tokens: { "anthropic:default": TOKEN }, keys: { openai: API_KEY } })
  )
  return { dataDir, socketDir, fixture }
}

// ---------------------------------------------------------------------------
// Servers

let spawnCount = 0

const startServer = (kind, env) =>
  new Promise((resolve, reject) => {
    const args =
      kind !== "baseline"
        ? [
            binOf(kind),
            "serve",
            "--data-dir",
            env.dataDir,
            "--socket-dir",
            env.socketDir,
            "--rate-limit",
            "0",
            "--log-level",
            "error",
            "--max-connections",
            "2000",
            ...(kind === "keyring" ? ["--store", "keyring"] : [])
          ]
        : [BASELINE, path.join(env.socketDir, `baseline-${process.pid}-${spawnCount++}.sock`), env.fixture]
    const startedAt = performance.now()
    const cwd = kind === "before" ? COMPARE_DIR : ROOT
    const childEnv = kind === "keyring" ? { ...process.env, ...KEYRING_ENV } : process.env
    const child = track(
      spawn(process.execPath, args, { cwd, env: childEnv, stdio: ["ignore", "pipe", "pipe"] })
    )
    let stderr = ""
    let stdout = ""
    let ready = false
    child.stderr.setEncoding("utf8")
    child.stderr.on("data", (text) => {
      stderr = (stderr + text).slice(-8192)
    })
    child.stdout.setEncoding("utf8")
    const timer = setTimeout(() => {
      child.kill("SIGKILL")
      reject(new Error(`${kind} did not print its ready line within 15 s; stderr: ${stderr}`))
    }, 15_000)
    child.stdout.on("data", (text) => {
      if (ready) return
      stdout += text
      const newline = stdout.indexOf("\n")
      if (newline < 0) return
      const readyMs = performance.now() - startedAt
      ready = true
      clearTimeout(timer)
      let line
      try {
        line = JSON.parse(stdout.slice(0, newline))
      } catch {
        child.kill("SIGKILL")
        reject(new Error(`${kind} ready line is not JSON: ${stdout.slice(0, newline)}`))
        return
      }
      if (line.event !== "listening" || typeof line.socket !== "string") {
        child.kill("SIGKILL")
        reject(new Error(`${kind} unexpected ready line: ${stdout.slice(0, newline)}`))
        return
      }
      // --status-watch: this checkout's server runs with `credproxy status --watch` attached to its admin socket.
      const watcher =
        env.statusWatch && kind === "credproxy"
          ? track(
              spawn(process.execPath, [BIN, "status", "--watch", "--json", "--data-dir", env.dataDir], {
                cwd: ROOT,
                stdio: "ignore"
              })
            )
          : undefined
      resolve({
        kind,
        child,
        watcher,
        pid: line.pid ?? child.pid,
        socket: line.socket,
        readyMs,
        stderr: () => stderr,
        alive: () => child.exitCode === null && child.signalCode === null
      })
    })
    child.on("exit", (code, signal) => {
      if (!ready) {
        clearTimeout(timer)
        reject(new Error(`${kind} exited before ready (${code ?? signal}); stderr: ${stderr}`))
      }
    })
  })

const stopServer = async (server) => {
  server.watcher?.kill("SIGTERM")
  if (!server.alive())
    return { code: server.child.exitCode, signal: server.child.signalCode, alreadyDead: true }
  const startedAt = performance.now()
  server.child.kill("SIGTERM")
  let exit = await waitExit(server.child, 7000)
  if (exit.timedOut) {
    server.child.kill("SIGKILL")
    exit = { ...(await waitExit(server.child, 2000)), killed: true }
  }
  return { ...exit, stopMs: performance.now() - startedAt }
}

// ---------------------------------------------------------------------------
// Load child (a separate process, so it never shares the server's event loop)

const startLoadChild = () =>
  new Promise((resolve, reject) => {
    const child = track(fork(LOAD, [], { cwd: ROOT, stdio: ["ignore", "inherit", "inherit", "ipc"] }))
    const waiters = []
    child.on("message", (message) => {
      if (message.type === "ready") {
        resolve({
          request: (msg, expectType, timeoutMs = 60_000) =>
            new Promise((res, rej) => {
              const timer = setTimeout(() => rej(new Error(`load child: no ${expectType} reply`)), timeoutMs)
              waiters.push({ expectType, res, rej, timer })
              child.send(msg)
            }),
          close: async () => {
            if (child.connected) child.send({ type: "exit" })
            const exit = await waitExit(child, 2000)
            if (exit.timedOut) child.kill("SIGKILL")
          }
        })
        return
      }
      const waiter = waiters.shift()
      if (!waiter) return
      clearTimeout(waiter.timer)
      if (message.type === "error") waiter.rej(new Error(`load child: ${message.message}`))
      else waiter.res(message)
    })
    child.on("exit", (code) => {
      for (const w of waiters.splice(0)) {
        clearTimeout(w.timer)
        w.rej(new Error(`load child exited (${code})`))
      }
      reject(new Error(`load child exited before ready (${code})`))
    })
  })

const runLoadOnce = async (server, options) => {
  const load = await startLoadChild()
  try {
    const reply = await load.request(
      { type: "load", options: { ...options, socket: server.socket, serverPid: server.pid } },
      "result",
      options.warmupMs + options.durationMs + 60_000
    )
    return reply.result
  } finally {
    await load.close()
  }
}

// ---------------------------------------------------------------------------
// Phases

const measureStartup = async (env, options) => {
  const ready = Object.fromEntries(SERVERS.map((kind) => [kind, []]))
  const stops = []
  for (let i = 0; i < options.spawns; i++) {
    for (const kind of rotated(i)) {
      const server = await startServer(kind, env)
      ready[kind].push(server.readyMs)
      const stop = await stopServer(server)
      if (kind === "credproxy") stops.push(stop)
    }
  }
  const help = []
  for (let i = 0; i < options.spawns; i++) {
    const startedAt = performance.now()
    const child = track(spawn(process.execPath, [BIN, "--help"], { cwd: ROOT, stdio: "ignore" }))
    const exit = await waitExit(child, 15_000)
    if (exit.timedOut) child.kill("SIGKILL")
    help.push(performance.now() - startedAt)
    if (exit.code !== 0) throw new Error(`credproxy --help exited ${exit.code ?? exit.signal}`)
  }
  return {
    readyMs: Object.fromEntries(
      SERVERS.map((kind) => [kind, { median: median(ready[kind]), samples: ready[kind] }])
    ),
    helpMs: { median: median(help), samples: help },
    credproxyStops: stops
  }
}

const measureMemory = async (env, options) => {
  const runs = Object.fromEntries(SERVERS.map((kind) => [kind, []]))
  for (let r = 0; r < options.repeats; r++) {
    for (const kind of rotated(r)) {
      const server = await startServer(kind, env)
      const load = await startLoadChild()
      try {
        await sleep(500)
        const idleKb = rssKb(server.pid)
        const opened = await load.request(
          { type: "idle", options: { socket: server.socket, count: options.idleConnections } },
          "idle-open",
          120_000
        )
        await sleep(1000)
        const heldKb = rssKb(server.pid)
        const closed = await load.request({ type: "idle-close" }, "idle-closed")
        runs[kind].push({
          idleKb,
          heldKb,
          opened: opened.opened,
          failed: opened.failed,
          failureSamples: opened.failureSamples,
          openMs: opened.openMs,
          closedByServer: closed.closedByServer,
          kbPerConnection: opened.opened > 0 ? (heldKb - idleKb) / opened.opened : Number.NaN,
          serverAlive: server.alive()
        })
      } finally {
        await load.close()
        await stopServer(server)
      }
    }
  }
  const summarize = (list) => ({
    idleKb: median(list.map((x) => x.idleKb)),
    heldKb: median(list.map((x) => x.heldKb)),
    kbPerConnection: median(list.map((x) => x.kbPerConnection)),
    opened: Math.min(...list.map((x) => x.opened)),
    failed: Math.max(...list.map((x) => x.failed)),
    closedByServer: Math.max(...list.map((x) => x.closedByServer)),
    runs: list
  })
  return Object.fromEntries(SERVERS.map((kind) => [kind, summarize(runs[kind])]))
}

const caseName = (c) => `${c.connections}x${c.inflight}`

const measureThroughput = async (env, options, warnings) => {
  const servers = {}
  for (const kind of SERVERS) servers[kind] = await startServer(kind, env)
  const rssAfterStartKb = Object.fromEntries(SERVERS.map((k) => [k, rssKb(servers[k].pid)]))
  const runs = []
  const total = options.repeats * CASES.length * OPS.length * SERVERS.length
  let done = 0
  let pair = 0
  let rssAfterLoadKb
  let stderrs
  const stops = {}
  try {
    for (let r = 0; r < options.repeats; r++) {
      for (const c of CASES) {
        for (const op of OPS) {
          // Alternate which server goes first (per case and per repeat), so neither always runs second.
          const order = rotated(pair++ + r)
          for (const kind of order) {
            const server = servers[kind]
            if (!server.alive()) throw new Error(`${kind} died; stderr: ${server.stderr()}`)
            const result = await runLoadOnce(server, {
              connections: c.connections,
              inflight: c.inflight,
              op,
              durationMs: options.duration * 1000,
              warmupMs: options.warmup * 1000,
              expect: op === "get_token" ? TOKEN.access_token : API_KEY
            })
            done += 1
            runs.push({ server: kind, case: caseName(c), ...c, op, repeat: r, ...result })
            log(
              `  [${String(done).padStart(2)}/${total}] ${kind.padEnd(9)} ${caseName(c).padEnd(5)} ${op.padEnd(11)} ` +
                `${fmtInt(result.throughput).padStart(8)} req/s  p99 ${fmtMs(result.latency.p99Us)} ms` +
                (result.totalErrors ? `  ERRORS ${JSON.stringify(result.errors)}` : "")
            )
            if (!server.alive()) warnings.push(`${kind} exited during ${caseName(c)} ${op}`)
          }
        }
      }
    }
  } finally {
    rssAfterLoadKb = Object.fromEntries(SERVERS.map((k) => [k, rssKb(servers[k].pid)]))
    for (const kind of SERVERS) stops[kind] = await stopServer(servers[kind])
    stderrs = Object.fromEntries(SERVERS.map((k) => [k, servers[k].stderr()]))
  }
  return { runs, rssAfterStartKb, rssAfterLoadKb, stops, stderrs }
}

// ---------------------------------------------------------------------------
// Summary and table

const fmtInt = (x) => (Number.isFinite(x) ? Math.round(x).toLocaleString("en-US") : "-")
const fmtMs = (us) => (Number.isFinite(us) ? (us / 1000).toFixed(us < 10_000 ? 3 : 1) : "-")
const fmtRatio = (x) => (Number.isFinite(x) ? `${x.toFixed(2)}x` : "-")
const fmtPct = (x) => (Number.isFinite(x) ? `${Math.round(x * 100)}%` : "-")

const summarize = (runs) => {
  const rows = []
  for (const c of CASES) {
    for (const op of OPS) {
      const row = { case: caseName(c), op }
      for (const kind of SERVERS) {
        const mine = runs.filter((x) => x.server === kind && x.case === caseName(c) && x.op === op)
        const tput = mine.map((x) => x.throughput)
        const p99 = mine.map((x) => x.latency.p99Us)
        row[kind] = {
          throughput: median(tput),
          throughputMin: Math.min(...tput),
          throughputMax: Math.max(...tput),
          throughputSpread: spreadOf(tput),
          p50Us: median(mine.map((x) => x.latency.p50Us)),
          p99Us: median(p99),
          p99Min: Math.min(...p99),
          p99Max: Math.max(...p99),
          p99Spread: spreadOf(p99),
          p999Us: median(mine.map((x) => x.latency.p999Us)),
          maxUs: Math.max(...mine.map((x) => x.latency.maxUs)),
          // Fairness: the least-served connection's share of the best-served one (1 = even).
          fairness: median(mine.map((x) => x.perConnection.min / x.perConnection.max)),
          serverCpuUsPerRequest: median(mine.map((x) => x.serverCpuUsPerRequest)),
          errors: mine.reduce((n, x) => n + x.totalErrors, 0)
        }
      }
      // Paired: credproxy ÷ baseline of the same repeat (adjacent runs), median over repeats;
      // steadier than the ratio of medians when the machine's speed drifts during the run.
      const pairs = Array.from({ length: Math.max(...runs.map((x) => x.repeat)) + 1 }, (_, r) => {
        const at = (kind) =>
          runs.find((x) => x.server === kind && x.case === caseName(c) && x.op === op && x.repeat === r)
        return [at("baseline"), at("credproxy")]
      }).filter(([b, p]) => b && p)
      row.pairedThroughputRatio = median(pairs.map(([b, p]) => p.throughput / b.throughput))
      row.pairedP99Ratio = median(pairs.map(([b, p]) => p.latency.p99Us / b.latency.p99Us))
      if (row.keyring) {
        row.keyringFileThroughput = row.keyring.throughput / row.credproxy.throughput
        row.keyringFileP99 = row.keyring.p99Us / row.credproxy.p99Us
        row.pairedKeyringFileThroughput = median(
          Array.from({ length: Math.max(...runs.map((x) => x.repeat)) + 1 }, (_, r) => {
            const at = (kind) =>
              runs.find((x) => x.server === kind && x.case === caseName(c) && x.op === op && x.repeat === r)
            return at("keyring") && at("credproxy")
              ? at("keyring").throughput / at("credproxy").throughput
              : Number.NaN
          })
        )
      }
      if (row.before) {
        row.afterBeforeThroughput = row.credproxy.throughput / row.before.throughput
        row.afterBeforeP99 = row.credproxy.p99Us / row.before.p99Us
      }
      row.throughputRatio = row.credproxy.throughput / row.baseline.throughput
      row.p50Ratio = row.credproxy.p50Us / row.baseline.p50Us
      row.p99Ratio = row.credproxy.p99Us / row.baseline.p99Us
      row.cpuRatio = row.credproxy.serverCpuUsPerRequest / row.baseline.serverCpuUsPerRequest
      rows.push(row)
    }
  }
  return rows
}

const table = (headers, rows) => {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)))
  const line = (cells) => cells.map((cell, i) => String(cell).padStart(widths[i])).join("  ")
  return [line(headers), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n")
}

const printReport = (report) => {
  const { summary, startup, memory, warnings, meta } = report
  const out = []
  out.push("")
  out.push(
    `credproxy vs baseline — ${meta.repeats} repeat(s) × ${meta.duration}s after ${meta.warmup}s warm-up, ` +
      `${meta.cores} cores, node ${meta.node}, loadavg before ${meta.loadavgBefore.map((x) => x.toFixed(2)).join(" ")}`
  )
  out.push("")
  out.push(
    table(
      [
        "case",
        "op",
        "base req/s",
        "cp req/s",
        "tput cp/base",
        "base p50/p99 ms",
        "cp p50/p99 ms",
        "p99 cp/base",
        "cpu µs/req b/cp",
        "spread b/cp",
        "err"
      ],
      summary.map((r) => [
        r.case,
        r.op,
        fmtInt(r.baseline.throughput),
        fmtInt(r.credproxy.throughput),
        fmtRatio(r.throughputRatio),
        `${fmtMs(r.baseline.p50Us)}/${fmtMs(r.baseline.p99Us)}`,
        `${fmtMs(r.credproxy.p50Us)}/${fmtMs(r.credproxy.p99Us)}`,
        fmtRatio(r.p99Ratio),
        `${r.baseline.serverCpuUsPerRequest?.toFixed(1)}/${r.credproxy.serverCpuUsPerRequest?.toFixed(1)}`,
        `${fmtPct(r.baseline.throughputSpread)}/${fmtPct(r.credproxy.throughputSpread)}`,
        r.baseline.errors + r.credproxy.errors
      ])
    )
  )
  const geo = Math.exp(summary.reduce((s, r) => s + Math.log(r.throughputRatio), 0) / summary.length)
  const geoP99 = Math.exp(summary.reduce((s, r) => s + Math.log(r.p99Ratio), 0) / summary.length)
  out.push("")
  out.push(
    `geometric mean: throughput cp/base ${fmtRatio(geo)} (higher is better), p99 cp/base ${fmtRatio(geoP99)} (lower is better)`
  )
  out.push("")
  out.push(
    "latency tail and fairness (max: worst over repeats; fair: least/most answers per connection; paired: median of per-repeat ratios):"
  )
  out.push(
    table(
      ["case", "op", "base p99.9/max ms", "cp p99.9/max ms", "fair b/cp", "paired tput/p99 cp/base"],
      summary.map((r) => [
        r.case,
        r.op,
        `${fmtMs(r.baseline.p999Us)}/${fmtMs(r.baseline.maxUs)}`,
        `${fmtMs(r.credproxy.p999Us)}/${fmtMs(r.credproxy.maxUs)}`,
        `${r.baseline.fairness.toFixed(2)}/${r.credproxy.fairness.toFixed(2)}`,
        `${fmtRatio(r.pairedThroughputRatio)}/${fmtRatio(r.pairedP99Ratio)}`
      ])
    )
  )
  out.push("")
  out.push(
    table(
      [
        "",
        "idle RSS MB",
        `RSS w/ ${meta.idleConnections} conns MB`,
        "KB/conn",
        "RSS after load MB",
        "ready ms"
      ],
      SERVERS.map((k) => [
        k,
        (memory[k].idleKb / 1024).toFixed(1),
        (memory[k].heldKb / 1024).toFixed(1),
        memory[k].kbPerConnection.toFixed(1),
        (report.throughput.rssAfterLoadKb[k] / 1024).toFixed(1),
        startup.readyMs[k].median.toFixed(0)
      ])
    )
  )
  out.push(
    `ratios: idle RSS ${fmtRatio(memory.credproxy.idleKb / memory.baseline.idleKb)}, ` +
      `KB/conn ${fmtRatio(memory.credproxy.kbPerConnection / memory.baseline.kbPerConnection)}, ` +
      `ready ${fmtRatio(startup.readyMs.credproxy.median / startup.readyMs.baseline.median)}; ` +
      `credproxy --help ${startup.helpMs.median.toFixed(0)} ms (median of ${startup.helpMs.samples.length})`
  )
  if (memory.before) {
    out.push("")
    out.push(`credproxy (this checkout) vs before (${meta.compare}), interleaved in this run:`)
    out.push(
      table(
        [
          "case",
          "op",
          "before req/s",
          "cp req/s",
          "tput cp/before",
          "before p99 ms",
          "cp p99 ms",
          "p99 cp/before",
          "spread before/cp"
        ],
        summary.map((r) => [
          r.case,
          r.op,
          fmtInt(r.before.throughput),
          fmtInt(r.credproxy.throughput),
          fmtRatio(r.afterBeforeThroughput),
          fmtMs(r.before.p99Us),
          fmtMs(r.credproxy.p99Us),
          fmtRatio(r.afterBeforeP99),
          `${fmtPct(r.before.throughputSpread)}/${fmtPct(r.credproxy.throughputSpread)}`
        ])
      )
    )
    out.push(
      `idle RSS cp/before ${fmtRatio(memory.credproxy.idleKb / memory.before.idleKb)}, ` +
        `KB/conn ${memory.before.kbPerConnection.toFixed(1)} → ${memory.credproxy.kbPerConnection.toFixed(1)}, ` +
        `ready ${startup.readyMs.before.median.toFixed(0)} → ${startup.readyMs.credproxy.median.toFixed(0)} ms`
    )
  }
  if (memory.keyring) {
    out.push("")
    out.push("credproxy on the keyring store vs on the file store, interleaved in this run:")
    out.push(
      table(
        [
          "case",
          "op",
          "file req/s",
          "keyring req/s",
          "tput keyring/file",
          "paired",
          "file p99 ms",
          "keyring p99 ms",
          "p99 keyring/file"
        ],
        summary.map((r) => [
          r.case,
          r.op,
          fmtInt(r.credproxy.throughput),
          fmtInt(r.keyring.throughput),
          fmtRatio(r.keyringFileThroughput),
          fmtRatio(r.pairedKeyringFileThroughput),
          fmtMs(r.credproxy.p99Us),
          fmtMs(r.keyring.p99Us),
          fmtRatio(r.keyringFileP99)
        ])
      )
    )
    out.push(
      `idle RSS keyring/file ${fmtRatio(memory.keyring.idleKb / memory.credproxy.idleKb)}, ` +
        `ready ${startup.readyMs.credproxy.median.toFixed(0)} → ${startup.readyMs.keyring.median.toFixed(0)} ms`
    )
  }
  if (warnings.length) {
    out.push("")
    for (const w of warnings) out.push(`WARNING: ${w}`)
  }
  out.push("")
  out.push(`results: ${path.relative(ROOT, report.file)}`)
  process.stdout.write(`${out.join("\n")}\n`)
}

// ---------------------------------------------------------------------------
// Main

/** The egress case alone (`--egress-only`): see bench/egress.mjs. */
const egressOnly = async (options) => {
  if (!existsSync(DIST_CLI)) execFileSync("npm", ["run", "build"], { cwd: ROOT, stdio: "inherit" })
  const egress = await measureEgress({ bin: BIN, ...options, log })
  mkdirSync(RESULTS_DIR, { recursive: true })
  const file = path.join(RESULTS_DIR, `egress-${new Date().toISOString().replace(/[:.]/g, "-")}.json`)
  writeFileSync(
    file,
    `${JSON.stringify({ node: process.version, cores: os.cpus().length, loadavg: os.loadavg(), options, egress }, null, 2)}\n`
  )
  printEgress(egress)
  process.stdout.write(`results: ${file}\n`)
}

const main = async () => {
  const options = parseOptions(process.argv.slice(2))
  if (options.egressOnly) return egressOnly(options)
  if (options.compare) {
    COMPARE_DIR = options.compare
    SERVERS = ["baseline", "credproxy", "before"]
  }
  if (options.store === "keyring") SERVERS = [...SERVERS, "keyring"]
  const cores = os.cpus().length
  const warnings = []
  const startedAt = Date.now()

  const fdLimit = openFileLimit()
  if (fdLimit < options.idleConnections + 256) {
    warnings.push(
      `ulimit -n is ${fdLimit}; ${options.idleConnections} idle connections need at least ${options.idleConnections + 256} (raise it with ulimit -n)`
    )
  }
  const loadavgBefore = os.loadavg()
  if (loadavgBefore[0] > 0.5 * cores) {
    warnings.push(
      `machine was busy: 1-minute load average ${loadavgBefore[0].toFixed(2)} > ${(0.5 * cores).toFixed(1)} before the run; absolute numbers are unreliable, ratios less so`
    )
  }
  for (const w of warnings) log(`bench: WARNING: ${w}`)

  const env = { ...(await prepare(options)), statusWatch: options.statusWatch === true }
  const distBefore = fileHash(DIST_CLI)
  const meta = {
    startedAt: new Date(startedAt).toISOString(),
    node: process.version,
    cores,
    cpu: os.cpus()[0]?.model,
    platform: `${os.platform()} ${os.release()}`,
    loadavgBefore,
    fdLimit,
    git: gitInfo(),
    distCliHash: distBefore,
    distCliMtime: statSync(DIST_CLI).mtime.toISOString(),
    ...options,
    cases: CASES.map(caseName),
    ops: OPS
  }

  log(`bench: start-up (${options.spawns} spawns each, interleaved) and --help`)
  const startup = await measureStartup(env, options)
  log(`bench: memory (${options.idleConnections} idle connections, ${options.repeats} repeat(s))`)
  const memory = await measureMemory(env, options)
  log(
    `bench: throughput (${CASES.length} cases × ${OPS.length} ops × ${SERVERS.length} servers × ${options.repeats} repeat(s))`
  )
  const throughput = await measureThroughput(env, options, warnings)
  const summary = summarize(throughput.runs)
  if (options.egress)
    log(`bench: egress (${options.repeats} repeat(s), interleaved with a plain Node reverse proxy)`)
  const egress = options.egress ? await measureEgress({ bin: BIN, ...options, log }) : undefined

  // Noise guard and oddities
  meta.loadavgAfter = os.loadavg()
  meta.elapsedS = (Date.now() - startedAt) / 1000
  const spready = []
  for (const row of summary) {
    for (const kind of SERVERS) {
      const s = row[kind]
      if (s.throughputSpread > SPREAD_WARN || s.p99Spread > SPREAD_WARN) {
        spready.push(`${kind} ${row.case} ${row.op} ${fmtPct(s.throughputSpread)}/${fmtPct(s.p99Spread)}`)
      }
      if (s.errors > 0) warnings.push(`${kind} ${row.case} ${row.op}: ${s.errors} errors (see JSON)`)
    }
  }
  if (spready.length) {
    warnings.push(
      `spread (max-min)/median over repeats above ${fmtPct(SPREAD_WARN)} in ${spready.length} of ${summary.length * SERVERS.length} series ` +
        `(throughput/p99; rerun or raise --repeats):\n  ${spready.join("\n  ")}`
    )
  }
  for (const kind of SERVERS) {
    const m = memory[kind]
    if (m.failed > 0 || m.opened < options.idleConnections) {
      warnings.push(
        `${kind}: only ${m.opened}/${options.idleConnections} idle connections opened (${m.failed} failed)`
      )
    }
    if (m.closedByServer > 0) warnings.push(`${kind}: closed ${m.closedByServer} idle connections while held`)
    const stop = throughput.stops[kind]
    if (stop.code !== 0 || stop.timedOut || stop.killed) {
      warnings.push(`${kind} did not exit cleanly on SIGTERM: ${JSON.stringify(stop)}`)
    }
    if (throughput.stderrs[kind].trim()) {
      warnings.push(`${kind} wrote to stderr: ${throughput.stderrs[kind].trim().slice(0, 500)}`)
    }
  }
  if (fileHash(DIST_CLI) !== distBefore) {
    warnings.push(
      "dist/cli.js changed during the run (someone rebuilt); spawns may have run different builds"
    )
  }
  if (meta.loadavgAfter[0] > cores + 0.5) {
    warnings.push(
      `1-minute load average after the run ${meta.loadavgAfter[0].toFixed(2)} (> cores + 0.5; the bench itself loads ~2 cores)`
    )
  }

  mkdirSync(RESULTS_DIR, { recursive: true })
  const file = path.join(RESULTS_DIR, `${meta.startedAt.replace(/[:.]/g, "-")}.json`)
  const report = { meta, summary, startup, memory, throughput, egress, warnings, file }
  writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`)
  printReport(report)
  if (egress !== undefined) printEgress(egress)
}

main().then(
  () => {
    cleanupSync()
    process.exit(0)
  },
  (error) => {
    process.stderr.write(`bench: failed: ${error?.stack ?? error}\n`)
    cleanupSync()
    process.exit(1)
  }
)
