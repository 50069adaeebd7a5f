import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as ProvidersFile from "../config/providers-file.js"
import * as StderrLogger from "../layers/StderrLogger.js"
import * as shared from "./options.js"

/** `--providers FILE` (PROTOCOL.md §16), for `serve`, `token refresh` and `providers list`. */
export const providersFile = Options.file("providers").pipe(
  Options.withDescription("OAuth providers file (default: {data dir}/providers.json, which may be missing)"),
  Options.optional,
  Options.map(Option.getOrUndefined)
)

/** Warnings about the file (a readable client secret) go to stderr: stdout carries only the answer. */
export const stderrLogger = StderrLogger.layer({ level: "info", format: "pretty" })

const listCommand = Command.make("list", { dataDir: shared.dataDir, providers: providersFile }, (flags) =>
  Effect.flatMap(ProvidersFile.load({ dataDir: flags.dataDir, file: flags.providers }), (providers) =>
    Effect.forEach(providers.map((provider) => provider.name).sort(), (name) => Console.log(name), {
      discard: true
    })
  ).pipe(Effect.provide(stderrLogger))
).pipe(Command.withDescription("list the configured OAuth providers, one name a line"))

export const providersCommand = Command.make("providers").pipe(
  Command.withDescription("OAuth providers the host can refresh tokens with"),
  Command.withSubcommands([listCommand])
)
