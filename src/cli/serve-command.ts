import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import * as Runtime from "effect/Runtime"
import { readCapabilityTokenFile } from "../config/capability-token-file.js"
import { PROTOCOL_VERSIONS } from "../protocol/limits.js"
import type { EgressSettings } from "../server/egress/egress-server.js"
import type { RunningServerWithEgress } from "../server/run-server.js"
import { runServer } from "../server/run-server.js"
import { DEFAULT_RATE_LIMIT, defaults as serverDefaults } from "../server/ServerConfig.js"
import type { RunningServer } from "../server/serve.js"
import type { ServeOptions } from "../server/server-layer.js"
import { egressOptions, resolveEgress } from "./egress-options.js"
import * as shared from "./options.js"
import { providersFile } from "./options.js"

/** The options of `serve`, reused by `exec`. */
export const serveOptions = {
  dataDir: shared.dataDir,
  store: shared.store,
  socketDir: Options.text("socket-dir").pipe(
    Options.withPseudoName("DIR"),
    Options.withDescription(
      "directory for the socket (default: $TMPDIR/llxprt-cred-{uid}); created 0700, must be yours and 0700"
    ),
    Options.optional
  ),
  allow: shared.repeated(
    Options.text("allow").pipe(Options.withPseudoName("SPEC")),
    "a token the socket may serve: provider or provider:bucket, * as a whole part (default: none)"
  ),
  allowKey: shared.repeated(
    Options.text("allow-key").pipe(Options.withPseudoName("SPEC")),
    "an API key name the socket may serve, * as a whole name (default: none)"
  ),
  rateLimit: shared
    .wholeNumber("rate-limit", "N")
    .pipe(
      Options.withDescription(`requests per second per connection, 0 = off (default: ${DEFAULT_RATE_LIMIT})`),
      Options.withDefault(DEFAULT_RATE_LIMIT)
    ),
  maxConnections: shared
    .wholeNumber("max-connections", "N")
    .pipe(
      Options.withDescription(
        `connections served at once; more are closed at once (default: ${serverDefaults.maxConnections})`
      ),
      Options.withDefault(serverDefaults.maxConnections)
    ),
  allowUid: shared
    .repeated(
      Options.text("allow-uid").pipe(Options.withPseudoName("UID")),
      "another uid that may connect besides yours, e.g. a container's user"
    )
    .pipe(Options.mapEffect((uids) => Effect.forEach(uids, shared.parseWholeNumber("allow-uid")))),
  capabilityTokenFile: Options.file("capability-token-file").pipe(
    Options.withPseudoName("FILE"),
    Options.withDescription(
      "require this secret (a 0600 file of yours) in every handshake as capabilityToken"
    ),
    Options.optional
  ),
  providers: providersFile,
  restrict: Options.boolean("restrict").pipe(
    Options.withDescription("restrict every connection: it may only read what it names (no writes, no lists)")
  ),
  confirm: Options.boolean("confirm").pipe(
    Options.withDescription(
      "confirm on first use: each credential's first use by each sandbox waits for `credproxy approve` (60 s)"
    )
  ),
  ...egressOptions,
  logLevel: shared.logLevel,
  logFormat: shared.logFormat
}

type ServeFlags = Command.Command.ParseConfig<typeof serveOptions>

export const toServeOptions = (flags: ServeFlags, capabilityToken: string | undefined): ServeOptions => ({
  capabilityToken,
  dataDir: flags.dataDir,
  store: flags.store,
  socketDir: Option.getOrUndefined(flags.socketDir),
  allow: flags.allow,
  allowKeys: flags.allowKey,
  rateLimit: flags.rateLimit,
  maxConnections: flags.maxConnections,
  allowUids: flags.allowUid,
  providers: flags.providers,
  restrict: flags.restrict,
  confirm: flags.confirm
})

/**
 * Runs `use` with a started server inside one scope; the server stops when
 * `use` ends or is interrupted.
 */
export const withServer = <A, E, R>(
  flags: ServeFlags,
  use: (server: RunningServerWithEgress) => Effect.Effect<A, E, R>,
  capabilityToken?: string,
  egress?: EgressSettings
) =>
  Effect.scoped(
    Effect.gen(function* () {
      const egressSettings = egress ?? (yield* resolveEgress(flags, { listen: { kind: "unix" } }))
      const token =
        capabilityToken ??
        (Option.isSome(flags.capabilityTokenFile)
          ? yield* readCapabilityTokenFile(flags.capabilityTokenFile.value)
          : undefined)
      const server = yield* runServer({
        ...toServeOptions(flags, token),
        egress: egressSettings,
        logLevel: flags.logLevel,
        logFormat: flags.logFormat
      })
      yield* logStatusOnSignal(server)
      return yield* use(server)
    })
  )

const readyLine = (server: RunningServerWithEgress): string =>
  `${JSON.stringify({
    event: "listening",
    socket: server.socketPath,
    pid: process.pid,
    protocolVersion: PROTOCOL_VERSIONS.max,
    ...(server.egress === undefined ? {} : { egress: server.egress.url })
  })}\n`

/** `kill -USR1 <pid>` logs the counters (connections, rejections, requests by op and outcome) on stderr. */
const logStatusOnSignal = (server: RunningServer) =>
  Effect.gen(function* () {
    const runtime = yield* Effect.runtime<never>()
    // Asked for explicitly, so written whatever --log-level says.
    const onSignal = () =>
      Runtime.runFork(runtime)(
        Effect.logInfo("status").pipe(
          Effect.annotateLogs({ ...server.status() }),
          Logger.withMinimumLogLevel(LogLevel.All)
        )
      )
    yield* Effect.acquireRelease(
      Effect.sync(() => process.on("SIGUSR1", onSignal)),
      () => Effect.sync(() => process.removeListener("SIGUSR1", onSignal))
    )
  })

export const serveCommand = Command.make("serve", serveOptions, (flags) =>
  withServer(flags, (server) =>
    Effect.zipRight(
      Effect.sync(() => process.stdout.write(readyLine(server))),
      Effect.never
    )
  )
).pipe(Command.withDescription("run the credential proxy until SIGINT, SIGTERM or SIGHUP"))
