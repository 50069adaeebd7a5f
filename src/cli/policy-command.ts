import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { PolicyRulesData } from "../protocol/admin.js"
import type { PolicyChangeKind } from "../services/AccessPolicy.js"
import { AdminCallFailed, onEveryServer, type RunningAdmin } from "./admin-client.js"
import * as shared from "./options.js"

const decodeRules = Schema.decodeUnknown(PolicyRulesData)

const list = (items: ReadonlyArray<string>, empty: string) => (items.length === 0 ? empty : items.join(" "))

/** One line per server: the rules in force after the command. */
const printRules = (server: RunningAdmin, data: unknown) =>
  Effect.flatMap(
    Effect.mapError(
      decodeRules(data),
      () => new AdminCallFailed({ socket: server.socket, reason: "its policy could not be read" })
    ),
    (rules) =>
      Console.log(
        `pid ${server.pid}: tokens allow ${list(rules.allow, "*")}, deny ${list(rules.deny, "none")}; keys allow ${list(rules.allowKeys, "*")}, deny ${list(rules.denyKeys, "none")}`
      )
  )

export const showPolicyCommand = Command.make("show", { dataDir: shared.dataDir }, (flags) =>
  onEveryServer(flags.dataDir, (server, call) =>
    Effect.flatMap(call("policy_show", {}), (data) => printRules(server, data))
  )
).pipe(Command.withDescription("print the access policy of every running server"))

const changeCommand = (kind: PolicyChangeKind, description: string) =>
  Command.make(
    kind,
    {
      dataDir: shared.dataDir,
      spec: Args.text({ name: "SPEC" }).pipe(
        Args.withDescription(kind.endsWith("key") ? "API key name or *" : "provider[:bucket], * for any part")
      )
    },
    (flags) =>
      onEveryServer(flags.dataDir, (server, call) =>
        Effect.flatMap(call("policy_change", { kind, spec: flags.spec }), (data) => printRules(server, data))
      )
  ).pipe(Command.withDescription(description))

/** The changes, one subcommand each. */
export const policyChangeCommands = {
  allow: changeCommand("allow", "allow tokens matching SPEC (takes back a deny of exactly SPEC)"),
  deny: changeCommand("deny", "refuse tokens matching SPEC, whatever allows them"),
  "allow-key": changeCommand(
    "allow-key",
    "allow the API keys matching SPEC (takes back a deny of exactly SPEC)"
  ),
  "deny-key": changeCommand("deny-key", "refuse the API keys matching SPEC, whatever allows them")
} as const

export const policyCommand = Command.make("policy").pipe(
  Command.withDescription(
    "show or change the access policy of the running servers, at once for new requests"
  ),
  Command.withSubcommands([
    showPolicyCommand,
    policyChangeCommands.allow,
    policyChangeCommands.deny,
    policyChangeCommands["allow-key"],
    policyChangeCommands["deny-key"]
  ])
)
