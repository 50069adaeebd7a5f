import * as Command from "@effect/cli/Command"
import { execCommand, execEntry } from "./exec-command.js"
import { entry } from "./help/command-tree.js"
import { keyCommand, keyEntry } from "./key-command.js"
import { providersCommand, providersEntry } from "./providers-command.js"
import { serveCommand, serveEntry } from "./serve-command.js"
import { tokenCommand, tokenEntry } from "./token-command.js"

/** The binary's name and version, as `--version` and the help print them. */
export const PROGRAM = "credproxy"
export const VERSION = "0.1.0"

/** The `credproxy` command: what @effect/cli parses and runs. */
export const root = Command.make(PROGRAM).pipe(
  Command.withDescription("host-side credential proxy for sandboxed AI coding agents"),
  Command.withSubcommands([serveCommand, execCommand, tokenCommand, keyCommand, providersCommand])
)

/** The same commands with their examples, as the help shows them. */
export const commandTree = entry(
  [],
  root,
  [
    {
      comment: "run a program with the proxy, serving one OAuth provider and one API key",
      line: "credproxy exec --allow anthropic --allow-key openai --capability-token -- my-agent"
    },
    {
      comment: "store a token on the host for the proxy to serve",
      line: "credproxy token import anthropic < token.json"
    }
  ],
  [serveEntry, execEntry, tokenEntry, keyEntry, providersEntry]
)
