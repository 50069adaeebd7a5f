import { type ChildProcess, spawn } from "node:child_process"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { readCapabilityTokenFile } from "../config/capability-token-file.js"
import { UsageError } from "../errors/usage.js"
import { DEFAULT_FORWARD_PORT } from "../forward/targets.js"
import type { EgressSettings } from "../server/egress/egress-server.js"
import type { RunningServerWithEgress } from "../server/run-server.js"
import { egressVariables } from "./egress-env.js"
import { resolveEgress } from "./egress-options.js"
import { ExitWith } from "./exit-status.js"
import { serveOptions, withServer } from "./serve-command.js"
import { forwardSignalsTo } from "./signals.js"

/**
 * How a capability token is handed to a command (fd 3, or the file of
 * `--print-env`): the token and a newline, the format the coding CLI's own
 * reader expects for a generated one (64 lowercase hex characters, §21).
 */
const handedOver = (token: string): string => `${token}\n`

/** The descriptor a launched command reads its capability token from (never the environment). */
const CAPABILITY_FD = 3

const execOptions = {
  ...serveOptions,
  capabilityToken: Options.boolean("capability-token").pipe(
    Options.withDescription(
      "generate a capability token (32 random bytes as 64 hex characters) and require it; CMD gets it on fd 3 (LLXPRT_CAPABILITY_FD=3), never in its environment"
    )
  ),
  printEnv: Options.boolean("print-env").pipe(
    Options.withDescription(
      "no CMD: print the variables and container flags for wiring a sandbox by hand, then serve"
    )
  ),
  command: Args.text({ name: "CMD" }).pipe(
    Args.withDescription("the command to run and its arguments, after --"),
    Args.repeated
  )
}

/** 128 + N for a child killed by signal N, as shells report it. */
const statusOf = (code: number | null, signal: NodeJS.Signals | null): number => {
  if (code !== null) return code
  const number = signal === null ? undefined : os.constants.signals[signal]
  return 128 + (number ?? 0)
}

const runChild = (
  command: ReadonlyArray<string>,
  server: RunningServerWithEgress,
  capabilityToken: string | undefined,
  egress: EgressSettings | undefined
) =>
  Effect.gen(function* () {
    const [file, ...args] = command as [string, ...Array<string>]
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      ...(egress === undefined || server.egress === undefined
        ? {}
        : egressVariables(egress, server.egress.url)),
      LLXPRT_CREDENTIAL_SOCKET: server.socketPath
    }
    delete env.LLXPRT_CAPABILITY_FD
    if (capabilityToken !== undefined) env.LLXPRT_CAPABILITY_FD = String(CAPABILITY_FD)
    yield* Effect.logInfo("running command with the credential proxy").pipe(
      Effect.annotateLogs({ socket: server.socketPath, command: file })
    )
    const child = yield* Effect.acquireRelease(
      Effect.sync(() =>
        spawn(file, args, {
          env,
          stdio: ["inherit", "inherit", "inherit", capabilityToken === undefined ? "ignore" : "pipe"]
        })
      ),
      (child) =>
        Effect.sync(() => child.exitCode === null && child.signalCode === null && child.kill("SIGTERM"))
    )
    if (capabilityToken !== undefined) {
      const channel = child.stdio[CAPABILITY_FD] as NodeJS.WritableStream | null
      channel?.on("error", () => {})
      channel?.end(handedOver(capabilityToken))
    }
    yield* forwardSignalsTo((signal) => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal)
    })
    const status = yield* awaitExit(child, file)
    if (status !== 0) return yield* new ExitWith({ status })
  })

const awaitExit = (child: ChildProcess, file: string) =>
  Effect.async<number, ExitWith>((resume) => {
    child.once("error", (error: NodeJS.ErrnoException) => {
      process.stderr.write(
        `credproxy: cannot start ${file} (${error.code ?? error.message}); check the command's name and PATH\n`
      )
      resume(Effect.fail(new ExitWith({ status: 127 })))
    })
    child.once("exit", (code, signal) => resume(Effect.succeed(statusOf(code, signal))))
  })

/** `--print-env`: what to hand a container started by hand (stdout), then serve until stopped. */
const printEnvironment = (
  server: RunningServerWithEgress,
  capabilityToken: string | undefined,
  egress: EgressSettings | undefined
) =>
  Effect.gen(function* () {
    const dir = path.dirname(server.socketPath)
    const lines = [`LLXPRT_CREDENTIAL_SOCKET=${server.socketPath}`]
    // Egress on the Unix socket: inside the container, `credproxy forward` makes it a loopback port.
    const listener = server.egress
    const forwarded = listener?.socketPath !== undefined
    if (egress !== undefined && listener !== undefined) {
      const base = forwarded ? `http://127.0.0.1:${DEFAULT_FORWARD_PORT}` : listener.url
      for (const [name, value] of Object.entries(egressVariables(egress, base)))
        lines.push(`${name}=${value}`)
    }
    if (capabilityToken !== undefined) {
      const tokenFile = path.join(dir, `llxprt-cred-${process.pid}.token`)
      yield* Effect.acquireRelease(
        Effect.sync(() =>
          fs.writeFileSync(tokenFile, handedOver(capabilityToken), { mode: 0o600, flag: "wx" })
        ),
        () => Effect.sync(() => fs.rmSync(tokenFile, { force: true }))
      )
      lines.push(`LLXPRT_CAPABILITY_FILE=${tokenFile}`)
    }
    const envFlags = lines.map((line) => `-e ${line.split("=")[0]}`).join(" ")
    lines.push(`# docker run -v ${dir}:${dir} ${envFlags} --user "$(id -u):$(id -g)" IMAGE ...`)
    lines.push(`# podman run -v ${dir}:${dir} ${envFlags} --userns=keep-id IMAGE ...`)
    if (forwarded) {
      lines.push(
        `# inside the container, before the agent: credproxy forward --listen 127.0.0.1:${DEFAULT_FORWARD_PORT} --to ${listener?.url} &`
      )
    }
    process.stdout.write(`${lines.join("\n")}\n`)
    return yield* Effect.never
  })

export const execCommand = Command.make("exec", execOptions, (flags) =>
  Effect.gen(function* () {
    if (flags.printEnv && flags.command.length > 0) {
      return yield* new UsageError({ reason: "CommandWithPrintEnv", subject: "--print-env" })
    }
    if (!flags.printEnv && flags.command.length === 0) {
      return yield* new UsageError({ reason: "NoCommand", subject: "CMD" })
    }
    if (flags.capabilityToken && Option.isSome(flags.capabilityTokenFile)) {
      return yield* new UsageError({ reason: "TwoCapabilityTokens", subject: "--capability-token" })
    }
    // The command gets the token the server requires: a generated one, or the one from the file.
    const capabilityToken = flags.capabilityToken
      ? crypto.randomBytes(32).toString("hex")
      : Option.isSome(flags.capabilityTokenFile)
        ? yield* readCapabilityTokenFile(flags.capabilityTokenFile.value)
        : undefined
    // Egress mode (§23): a phantom of this run; a loopback port for a command on the host, the
    // Unix socket for a container (--print-env), unless --egress-listen says otherwise.
    const egress = yield* resolveEgress(flags, {
      listen: flags.printEnv ? { kind: "unix" } : { kind: "tcp", host: "127.0.0.1", port: 0 },
      phantom: crypto.randomBytes(32).toString("hex")
    })
    return yield* withServer(
      flags,
      (server) =>
        flags.printEnv
          ? printEnvironment(server, capabilityToken, egress)
          : runChild(flags.command, server, capabilityToken, egress),
      capabilityToken,
      egress
    )
  })
).pipe(
  Command.withDescription(
    "start the proxy, run CMD with LLXPRT_CREDENTIAL_SOCKET set, stop the proxy when CMD exits; exit with CMD's status"
  )
)
