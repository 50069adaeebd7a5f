import * as Command from "@effect/cli/Command"
import { approveCommand } from "./approve-command.js"
import { doctorCommand } from "./doctor-command.js"
import { execCommand } from "./exec-command.js"
import { forwardCommand } from "./forward-command.js"
import { entry } from "./help/command-tree.js"
import { keyCommand, listKeysCommand, removeKeyCommand, setCommand } from "./key-command.js"
import { loginCommand } from "./login-command.js"
import { policyChangeCommands, policyCommand, showPolicyCommand } from "./policy-command.js"
import { addCommand } from "./providers-add.js"
import { listProvidersCommand, providersCommand } from "./providers-command.js"
import { refreshCommand } from "./refresh-command.js"
import { serveCommand } from "./serve-command.js"
import { statusCommand } from "./status-command.js"
import { copyCommand, storeCommand } from "./store-command.js"
import { importCommand, listCommand, removeCommand, showCommand, tokenCommand } from "./token-command.js"

/** The binary's name and version, as `--version` and the help print them. */
export const PROGRAM = "credproxy"
export const VERSION = "0.1.0"

/** The `credproxy` command: what @effect/cli parses and runs. */
export const root = Command.make(PROGRAM).pipe(
  Command.withDescription("host-side credential proxy for sandboxed AI coding agents"),
  Command.withSubcommands([
    serveCommand,
    execCommand,
    loginCommand,
    forwardCommand,
    tokenCommand,
    keyCommand,
    providersCommand,
    statusCommand,
    policyCommand,
    approveCommand,
    storeCommand,
    doctorCommand
  ])
)

/** The same commands as the help shows them, each with its examples (`help/examples.ts`). */
export const commandTree = entry("", root, [
  entry("serve", serveCommand),
  entry("exec", execCommand),
  entry("login", loginCommand),
  entry("forward", forwardCommand),
  entry("token", tokenCommand, [
    entry("token import", importCommand),
    entry("token show", showCommand),
    entry("token list", listCommand),
    entry("token remove", removeCommand),
    entry("token refresh", refreshCommand)
  ]),
  entry("key", keyCommand, [
    entry("key set", setCommand),
    entry("key list", listKeysCommand),
    entry("key remove", removeKeyCommand)
  ]),
  entry("providers", providersCommand, [
    entry("providers list", listProvidersCommand),
    entry("providers add", addCommand)
  ]),
  entry("status", statusCommand),
  entry("policy", policyCommand, [
    entry("policy show", showPolicyCommand),
    ...Object.entries(policyChangeCommands).map(([kind, command]) => entry(`policy ${kind}`, command))
  ]),
  entry("approve", approveCommand),
  entry("store", storeCommand, [entry("store copy", copyCommand)]),
  entry("doctor", doctorCommand)
])
