import * as fs from "node:fs"
import * as path from "node:path"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { resolveDataDir } from "../config/data-dir.js"
import { colorsFor, styler } from "../lib/colors.js"
import { defaultSocketDir } from "../server/socket-path.js"
import type { DoctorInput, Finding } from "./doctor/check.js"
import { hostChecks } from "./doctor/host-checks.js"
import { failed, renderJson, renderText } from "./doctor/report.js"
import { socketCheck } from "./doctor/sandbox-checks.js"
import { ExitWith } from "./exit-status.js"
import { requireName } from "./names.js"
import * as shared from "./options.js"
import { providersFile } from "./options.js"

const optionalPath = (name: string, pseudoName: string, description: string) =>
  Options.text(name).pipe(
    Options.withPseudoName(pseudoName),
    Options.withDescription(description),
    Options.optional,
    Options.map(Option.getOrUndefined)
  )

const doctorOptions = {
  json: Options.boolean("json").pipe(Options.withDescription("print one JSON object instead of lines")),
  dataDir: optionalPath("data-dir", "DIR", shared.DATA_DIR_DESCRIPTION),
  socketDir: optionalPath(
    "socket-dir",
    "DIR",
    "the socket directory serve would use (default: $TMPDIR/llxprt-cred-{uid})"
  ),
  socket: optionalPath(
    "socket",
    "PATH",
    "check this socket as a client would (default: $LLXPRT_CREDENTIAL_SOCKET)"
  ),
  provider: optionalPath(
    "provider",
    "NAME",
    "also check this provider's token: stored on the host, served on the socket"
  ),
  bucket: shared.bucket,
  store: shared.store,
  providers: providersFile
}

type DoctorFlags = Command.Command.ParseConfig<typeof doctorOptions>

const nonEmpty = (value: string | undefined) => (value === undefined || value === "" ? undefined : value)

/** The marks container runtimes leave (Docker, Podman, and the `container` variable of systemd's convention). */
const inContainer = (env: NodeJS.ProcessEnv): boolean =>
  fs.existsSync("/.dockerenv") || fs.existsSync("/run/.containerenv") || nonEmpty(env.container) !== undefined

/**
 * Where doctor runs: in the sandbox when `LLXPRT_CREDENTIAL_SOCKET` is set or
 * this is a container, unless `--data-dir` or `--socket-dir` ask for the host.
 */
const inputOf = (flags: DoctorFlags, provider: string | undefined, env: NodeJS.ProcessEnv): DoctorInput => {
  const envSocket = nonEmpty(env.LLXPRT_CREDENTIAL_SOCKET)
  const container = inContainer(env)
  const hostAsked = flags.dataDir !== undefined || flags.socketDir !== undefined
  const socket =
    flags.socket !== undefined
      ? { path: flags.socket, from: "--socket" as const }
      : envSocket === undefined
        ? undefined
        : { path: envSocket, from: "LLXPRT_CREDENTIAL_SOCKET" as const }
  return {
    side: !hostAsked && (envSocket !== undefined || container) ? "sandbox" : "host",
    dataDir: resolveDataDir(flags.dataDir, env),
    socketDir: path.resolve(flags.socketDir ?? defaultSocketDir()),
    socket,
    providersFile: flags.providers,
    store: flags.store,
    token: provider === undefined ? undefined : { provider, bucket: flags.bucket },
    inContainer: container,
    env
  }
}

const titleOf = (input: DoctorInput): string =>
  input.side === "sandbox"
    ? "credproxy doctor: the way to the proxy from this process (sandbox side)"
    : `credproxy doctor: host side, data directory ${input.dataDir}, socket directory ${input.socketDir}`

/** `credproxy doctor`: every check at once, each bounded; exit 1 when one fails. */
export const doctorCommand = Command.make("doctor", doctorOptions, (flags) =>
  Effect.gen(function* () {
    const provider =
      flags.provider === undefined ? undefined : yield* requireName(flags.provider, "--provider")
    yield* requireName(flags.bucket, "--bucket")
    const input = inputOf(flags, provider, process.env)
    const checks =
      input.side === "sandbox"
        ? [socketCheck]
        : [...hostChecks, ...(input.socket === undefined ? [] : [socketCheck])]
    const findings: ReadonlyArray<Finding> = (yield* Effect.forEach(checks, (check) => check.run(input), {
      concurrency: "unbounded"
    })).flat()
    process.stdout.write(
      flags.json
        ? renderJson(input.side, findings)
        : renderText(titleOf(input), findings, styler(colorsFor(process.stdout)))
    )
    if (failed(findings)) return yield* new ExitWith({ status: 1 })
  })
).pipe(
  Command.withDescription(
    "check the host's set-up, or inside a sandbox the way to the proxy, with a fix for each problem"
  )
)
