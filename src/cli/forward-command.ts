import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Effect from "effect/Effect"
import { UsageError } from "../errors/usage.js"
import { forwardReadyLine, startBytePipe } from "../forward/byte-pipe.js"
import { DEFAULT_FORWARD_PORT, parseForwardTargets } from "../forward/targets.js"

/**
 * `credproxy forward`, as the help shows it. The binary runs `forward` from
 * its own small entry (`src/forward/main.ts`); this command is the same pipe
 * for `--help`, completions and the library's CLI.
 */
export const forwardCommand = Command.make(
  "forward",
  {
    listen: Options.text("listen").pipe(
      Options.withPseudoName("ADDR"),
      Options.withDescription(
        `loopback address to listen on inside the container (default: 127.0.0.1:${DEFAULT_FORWARD_PORT})`
      ),
      Options.withDefault(`127.0.0.1:${DEFAULT_FORWARD_PORT}`)
    ),
    to: Options.text("to").pipe(
      Options.withPseudoName("unix:PATH"),
      Options.withDescription("the egress socket mounted into the container (the ready line's egress)")
    )
  },
  ({ listen, to }) =>
    Effect.gen(function* () {
      const parsed = parseForwardTargets(listen, to)
      if ("option" in parsed) {
        return yield* new UsageError({
          reason: "ForwardTarget",
          subject: parsed.option,
          detail: parsed.value
        })
      }
      const { host, socketPath } = parsed.targets
      const { port } = yield* Effect.acquireRelease(
        Effect.tryPromise({
          try: () => startBytePipe(parsed.targets),
          catch: () => new UsageError({ reason: "ForwardTarget", subject: "--listen", detail: listen })
        }),
        ({ server }) => Effect.sync(() => server.close())
      )
      process.stdout.write(forwardReadyLine(host, port, socketPath))
      return yield* Effect.never
    }).pipe(Effect.scoped)
).pipe(
  Command.withDescription(
    "inside a container: pipe a loopback port to the mounted egress socket (holds no secret, loads no server code)"
  )
)
