import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterEach, beforeEach } from "vitest"
import type { StatusSnapshot } from "../../src/server/ServerStatus.js"
import { poll } from "./until.js"

/**
 * Helpers for tests that run the real, bundled binary (`node bin/credproxy.mjs`)
 * as child processes, in real time, with generous bounds. Every child started
 * here is tracked so that `killAllChildren()` (called from `afterEach`) leaves
 * nothing running.
 */

export const BIN = path.resolve(import.meta.dirname, "../../bin/credproxy.mjs")
const CWD = path.resolve(import.meta.dirname, "../..")

/** Longest a one-shot command may take before it is killed and the test fails. */
const COMMAND_TIMEOUT_MS = 15_000
/** Longest `serve` may take to print its ready line. */
export const READY_TIMEOUT_MS = 10_000

const children = new Set<ChildProcess>()

/** The environment of every child: ours without `CREDPROXY_HOME`, no colours, plus `extra`. */
const childEnv = (extra: Readonly<Record<string, string>>): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: "1" }
  delete env.CREDPROXY_HOME
  return { ...env, ...extra }
}

export interface SpawnOptions {
  /** Written to stdin, which is then closed (closed empty when absent). */
  readonly stdin?: string
  /** Added to the child's environment. */
  readonly env?: Readonly<Record<string, string>>
  /** For `runCli`: how long the command may take before it is killed and the call fails (default 15 s). */
  readonly timeoutMs?: number
  /** Run as this user (needs root). */
  readonly user?: { readonly uid: number; readonly gid: number }
}

export interface Workspace {
  /** A fresh directory under the real temp dir (short, so socket paths stay short). */
  readonly root: string
  /** `{root}/data`; not created: the CLI creates it. */
  readonly dataDir: string
  /** `{root}/s`; not created: `serve` creates it 0700. */
  readonly socketDir: string
  readonly remove: () => void
}

export const makeWorkspace = (): Workspace => {
  const root = fs.mkdtempSync(path.join(fs.realpathSync(os.tmpdir()), "cpc-"))
  return {
    root,
    dataDir: path.join(root, "data"),
    socketDir: path.join(root, "s"),
    remove: () => fs.rmSync(root, { recursive: true, force: true })
  }
}

export interface CliResult {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
}

export const spawnCli = (
  args: ReadonlyArray<string>,
  env: Readonly<Record<string, string>> = {},
  user?: SpawnOptions["user"]
): ChildProcess => {
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: CWD,
    env: childEnv(env),
    stdio: ["pipe", "pipe", "pipe"],
    ...user
  })
  children.add(child)
  child.once("exit", () => children.delete(child))
  // A child that exits before reading its stdin must not crash the test with EPIPE.
  child.stdin?.on("error", () => {})
  return child
}

/** Runs one command to completion. */
export const runCli = (args: ReadonlyArray<string>, options: SpawnOptions = {}): Promise<CliResult> =>
  new Promise((resolve, reject) => {
    const child = spawnCli(args, options.env, options.user)
    let stdout = ""
    let stderr = ""
    child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk
    })
    child.stderr!.setEncoding("utf8").on("data", (chunk: string) => {
      stderr += chunk
    })
    const timeoutMs = options.timeoutMs ?? COMMAND_TIMEOUT_MS
    const timer = setTimeout(() => {
      child.kill("SIGKILL")
      reject(new Error(`credproxy ${args.join(" ")} did not finish within ${timeoutMs} ms\n${stderr}`))
    }, timeoutMs)
    child.once("error", (error) => {
      clearTimeout(timer)
      reject(error)
    })
    child.once("close", (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stdout, stderr })
    })
    child.stdin!.end(options.stdin ?? "")
  })

/** A command that runs while the test talks to it: what it wrote so far, its stdin, its exit. */
export interface RunningCli {
  readonly child: ChildProcess
  readonly stdout: () => string
  readonly stderr: () => string
  /** Resolves (up to 10 s, real time) once stderr matches `pattern`; the match. */
  readonly waitForStderr: (pattern: RegExp, timeoutMs?: number) => Promise<RegExpMatchArray>
  /** Resolves with the exit status once the process has exited (and its pipes closed). */
  readonly exited: Promise<{ readonly code: number | null; readonly signal: NodeJS.Signals | null }>
}

/** Starts a command and leaves its stdin open (`child.stdin`) for the test to write to. */
export const startCli = (args: ReadonlyArray<string>, options: SpawnOptions = {}): RunningCli =>
  attach(spawnCli(args, options.env))

/** Starts `command` (not the binary): for wrappers such as `script`, tracked and killed like the others. */
export const startProcess = (
  command: string,
  args: ReadonlyArray<string>,
  options: SpawnOptions = {}
): RunningCli => {
  const child = spawn(command, [...args], {
    cwd: CWD,
    env: childEnv(options.env ?? {}),
    stdio: ["pipe", "pipe", "pipe"]
  })
  children.add(child)
  child.once("exit", () => children.delete(child))
  child.stdin?.on("error", () => {})
  return attach(child)
}

const attach = (child: ChildProcess): RunningCli => {
  let stdout = ""
  let stderr = ""
  child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
    stdout += chunk
  })
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => {
    stderr += chunk
  })
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("close", (code, signal) => resolve({ code, signal }))
  )
  return {
    child,
    stdout: () => stdout,
    stderr: () => stderr,
    waitForStderr: async (pattern, timeoutMs = 10_000) => {
      const { value } = await poll(
        () => pattern.exec(stderr),
        (match) => match !== null,
        { limitMs: timeoutMs, intervalMs: 10, what: `${pattern} on stderr` }
      ).catch((error: Error) => {
        throw new Error(`${error.message}\nstderr so far:\n${stderr}`)
      })
      return value as RegExpMatchArray
    },
    exited
  }
}

export interface ReadyLine {
  readonly event: string
  readonly socket: string
  readonly pid: number
  readonly protocolVersion: number
  /** Egress mode (§23): `http://127.0.0.1:PORT` or `unix:/abs/path.sock`. */
  readonly egress?: string
}

export interface ServeProcess {
  readonly child: ChildProcess
  readonly pid: number
  /** The ready line exactly as printed, without its newline. */
  readonly readyText: string
  readonly ready: ReadyLine
  readonly socketPath: string
  /** Everything the process wrote so far. */
  readonly stdout: () => string
  readonly stderr: () => string
  /** Resolves with the exit status once the process has exited (and its pipes closed). */
  readonly exited: Promise<{ readonly code: number | null; readonly signal: NodeJS.Signals | null }>
  /** Sends `signal` and waits (up to `timeoutMs`) for the exit. */
  readonly stop: (
    signal?: NodeJS.Signals,
    timeoutMs?: number
  ) => Promise<{ readonly code: number | null; readonly signal: NodeJS.Signals | null }>
}

/** Starts `credproxy serve ARGS` and waits (up to `READY_TIMEOUT_MS`) for its ready line on stdout. */
export const startServe = (
  args: ReadonlyArray<string>,
  options: SpawnOptions = {}
): Promise<ServeProcess> => {
  const child = spawnCli(["serve", ...args], options.env)
  child.stdin!.end()
  let stdout = ""
  let stderr = ""
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("close", (code, signal) => resolve({ code, signal }))
  )
  const stop = async (signal: NodeJS.Signals = "SIGTERM", timeoutMs = 10_000) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal)
    return withTimeout(exited, timeoutMs, `serve did not exit within ${timeoutMs} ms after ${signal}`)
  }
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL")
      reject(new Error(`serve printed no ready line within ${READY_TIMEOUT_MS} ms\nstderr:\n${stderr}`))
    }, READY_TIMEOUT_MS)
    child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
      const before = stdout
      stdout += chunk
      const newline = stdout.indexOf("\n")
      if (newline >= 0 && before.indexOf("\n") < 0) {
        clearTimeout(timer)
        const readyText = stdout.slice(0, newline)
        let ready: ReadyLine
        try {
          ready = JSON.parse(readyText) as ReadyLine
        } catch (error) {
          reject(new Error(`ready line is not JSON: ${readyText} (${(error as Error).message})`))
          return
        }
        resolve({
          child,
          pid: child.pid!,
          readyText,
          ready,
          socketPath: ready.socket,
          stdout: () => stdout,
          stderr: () => stderr,
          exited,
          stop
        })
      }
    })
    child.stderr!.setEncoding("utf8").on("data", (chunk: string) => {
      stderr += chunk
    })
    child.once("error", (error) => {
      clearTimeout(timer)
      reject(error)
    })
    void exited.then(({ code, signal }) => {
      clearTimeout(timer)
      reject(
        new Error(`serve exited (code ${code}, signal ${signal}) before its ready line\nstderr:\n${stderr}`)
      )
    })
  })
}

/** SIGKILLs every child still running and waits for them to go (for `afterEach`). */
export const killAllChildren = async (): Promise<void> => {
  const running = [...children]
  await Promise.all(
    running.map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve()
          child.once("exit", () => resolve())
          child.kill("SIGKILL")
        })
    )
  )
  children.clear()
}

export const withTimeout = <A>(promise: Promise<A>, ms: number, message: string): Promise<A> => {
  let timer: NodeJS.Timeout | undefined
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(message)), ms)
    })
  ]).finally(() => clearTimeout(timer))
}

const statusLines = (stderr: string): Array<StatusSnapshot> =>
  stderr
    .split("\n")
    .filter((line) => line.includes('"message":"status"'))
    .map((line) => (JSON.parse(line) as { annotations: StatusSnapshot }).annotations)

/**
 * The counters of a running `serve` started with `--log-format json`: asks
 * with SIGUSR1 and reads the status line it logs on stderr.
 */
export const serverStatus = async (server: ServeProcess): Promise<StatusSnapshot> => {
  const before = statusLines(server.stderr()).length
  server.child.kill("SIGUSR1")
  const { value } = await poll(
    () => statusLines(server.stderr()),
    (lines) => lines.length > before,
    { what: "a status line on stderr" }
  )
  return value[value.length - 1]!
}

/** Every file and directory under `dir` (relative paths), sorted. */
export const listTree = (dir: string): Array<string> => {
  if (!fs.existsSync(dir)) return []
  return (fs.readdirSync(dir, { recursive: true }) as Array<string>).sort()
}

/**
 * The per-test set-up of files that drive the real binary: a fresh workspace
 * before each test; after it, every client closed, every child killed and
 * the workspace removed.
 */
export const useCliWorkspace = (): { readonly ws: Workspace; readonly clients: Array<{ close(): void }> } => {
  let current: Workspace | undefined
  const clients: Array<{ close(): void }> = []
  beforeEach(() => {
    current = makeWorkspace()
  })
  afterEach(async () => {
    for (const client of clients.splice(0)) client.close()
    await killAllChildren()
    current?.remove()
  })
  return {
    get ws() {
      if (current === undefined) throw new Error("useCliWorkspace: no test is running")
      return current
    },
    clients
  }
}
