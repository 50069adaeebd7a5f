import * as Command from "@effect/cli/Command"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as ProvidersFile from "../config/providers-file.js"
import * as shared from "./options.js"
import { checkedDataDir, providersFile } from "./options.js"
import { addCommand } from "./providers-add.js"

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
  Command.withDescription("OAuth providers the host can log in to and refresh tokens with"),
  Command.withSubcommands([listProvidersCommand, addCommand])
)
