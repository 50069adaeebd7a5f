import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as ProvidersFile from "../config/providers-file.js"
import { checkDataDir } from "../layers/file-store/data-dir-check.js"
import * as shared from "./options.js"

/** `--providers FILE` (PROTOCOL.md §16), for `serve`, `token refresh` and `providers list`. */
export const providersFile = Options.file("providers").pipe(
  Options.withPseudoName("FILE"),
  Options.withDescription("OAuth providers file (default: {data dir}/providers.json, which may be missing)"),
  Options.optional,
  Options.map(Option.getOrUndefined)
)

/**
 * The data directory's checks (PROTOCOL.md §22) for a command that reads it
 * without opening a store, made before anything in it is read: a refused one
 * is `DataDirRefused` (exit 2) as for every other command. A missing one is
 * left missing.
 */
export const checkedDataDir = (dataDir: string) => checkDataDir(dataDir, { create: false })

export const listProvidersCommand = Command.make(
  "list",
  { dataDir: shared.dataDir, providers: providersFile },
  (flags) =>
    checkedDataDir(flags.dataDir).pipe(
      Effect.zipRight(ProvidersFile.load({ dataDir: flags.dataDir, file: flags.providers })),
      Effect.flatMap((providers) =>
        Effect.forEach(providers.map((provider) => provider.name).sort(), (name) => Console.log(name), {
          discard: true
        })
      )
    )
).pipe(Command.withDescription("list the configured OAuth providers, one name a line"))

export const providersCommand = Command.make("providers").pipe(
  Command.withDescription("OAuth providers the host can refresh tokens with"),
  Command.withSubcommands([listProvidersCommand])
)
