import * as Schema from "effect/Schema"
import { NAME_RULE } from "../protocol/names.js"
import { type Explained, explain } from "./explained.js"

/** What was wrong with the arguments or the input of a command (exit status 2). */
export const UsageReason = Schema.Literal(
  "InvalidName",
  "InvalidPattern",
  "InvalidNumber",
  "EmptyCapabilityToken",
  "CapabilityTokenFile",
  "ProvidersFile",
  "NoCommand",
  "CommandWithPrintEnv",
  "TwoCapabilityTokens",
  "NotJson",
  "InvalidToken",
  "TokenTooLarge",
  "EmptyKey",
  "KeyTooLarge",
  "StdinUnreadable",
  "InvalidStore",
  "SameStore",
  "MissingAnswer",
  "InvalidEndpoint",
  "SecretFile",
  "EmptyValue",
  "OptionNeedsFlow",
  "IssuerMetadata",
  "NotACode",
  "NoCodePasted",
  "SessionTimeout",
  "LoginProvider",
  "EgressFile",
  "PhantomFile",
  "NoPhantom",
  "EgressListen",
  "EgressCa",
  "EgressOnly",
  "ForwardTarget"
)
export type UsageReason = typeof UsageReason.Type

/** The subject of the failures about what was piped in. */
export const STANDARD_INPUT = "standard input"

/**
 * Bad arguments or input on the command line (exit status 2). `subject` is
 * the option, argument or file involved (`--bucket`, `PROVIDER`, a path,
 * `standard input`); `detail` the value or the problem found, never a
 * secret. The message says what is wrong and how to fix it.
 */
export class UsageError extends Schema.TaggedError<UsageError>()("UsageError", {
  reason: UsageReason,
  subject: Schema.String,
  detail: Schema.optional(Schema.String)
}) {
  get explained(): Explained {
    return USAGE_MESSAGES[this.reason](this.subject, this.detail ?? "")
  }

  override get message(): string {
    return explain(this.explained)
  }
}

const USAGE_MESSAGES: Record<UsageReason, (subject: string, detail: string) => Explained> = {
  InvalidName: (subject, value) => ({
    what: `invalid ${subject} "${value}"`,
    fix: `a name is ${NAME_RULE}`
  }),
  InvalidPattern: (subject, problem) => ({
    what: `${subject}: ${problem}`,
    fix: "see the allow patterns in 'credproxy serve --help'"
  }),
  InvalidNumber: (subject, value) => ({
    what: `${subject} is ${value}`,
    fix: `${subject} must be a whole number of 0 or more`
  }),
  EmptyCapabilityToken: (subject) => ({
    what: `the ${subject} is empty`,
    fix: "give a non-empty token, or none at all"
  }),
  CapabilityTokenFile: (file, problem) => ({
    what: `capability token file ${file} ${problem}`,
    fix: "give a regular file of yours, mode 0600, holding the token as text"
  }),
  ProvidersFile: (file, problem) => ({
    what: `providers file ${file}: ${problem}`,
    fix: "correct the file (each provider needs a clientId, and an https tokenEndpoint or issuer), or name another with --providers"
  }),
  NoCommand: (subject) => ({
    what: "no command given",
    fix: `give ${subject} after --: credproxy exec [options] -- ${subject} [ARGS...], or use --print-env`
  }),
  CommandWithPrintEnv: (subject) => ({
    what: `${subject} takes no command`,
    fix: `drop the command or ${subject}`
  }),
  TwoCapabilityTokens: (subject) => ({
    what: `${subject} generates a token and --capability-token-file names one`,
    fix: "give only one of them"
  }),
  NotJson: (subject) => ({
    what: `${subject} is not valid JSON`,
    fix: "pipe in one JSON token object, e.g. credproxy token import NAME < token.json"
  }),
  InvalidToken: (subject, issue) => ({
    what: `the token on ${subject} is not valid: ${issue}`,
    fix: "pipe in the token as the provider gave it (access_token, expiry, token_type)"
  }),
  TokenTooLarge: (subject, limit) => ({
    what: `the token on ${subject} is larger than ${limit} bytes as JSON`,
    fix: "store only the fields the provider gave"
  }),
  EmptyKey: (subject) => ({
    what: `no key on ${subject}`,
    fix: 'pipe the key in, e.g. printf %s "$KEY" | credproxy key set NAME'
  }),
  KeyTooLarge: (subject, limit) => ({
    what: `key too large: at most ${limit} bytes on ${subject}`,
    fix: "pipe in the key alone"
  }),
  StdinUnreadable: (subject, code) => ({
    what: `cannot read ${subject} (${code})`,
    fix: "pipe or redirect the input into the command"
  }),
  InvalidStore: (subject, value) => ({
    what: `${subject} must be file or keyring, not ${JSON.stringify(value)}`,
    fix: `set ${subject} to file or keyring, or leave it unset for file`
  }),
  SameStore: (subject, kind) => ({
    what: `${subject} are both ${kind}`,
    fix: "name two different stores"
  }),
  EgressFile: (file, problem) => ({
    what: `egress routes file ${file}: ${problem}`,
    fix: "correct the file (each route needs upstream, credential and header; see 'credproxy serve --help')"
  }),
  PhantomFile: (file, problem) => ({
    what: `phantom file ${file} ${problem}`,
    fix: "give a regular file of yours, mode 0600, holding the phantom as text"
  }),
  NoPhantom: (subject) => ({
    what: "egress mode needs a phantom and none was given",
    fix: `give ${subject} FILE (a 0600 file holding a random secret), or use credproxy exec --egress, which makes one`
  }),
  EgressListen: (subject, value) => ({
    what: `${subject} ${JSON.stringify(value)} is not a listener`,
    fix: `give ${subject} 127.0.0.1:PORT (a loopback address; port 0 = any free) or unix`
  }),
  EgressCa: (file, problem) => ({
    what: `CA file ${file} ${problem}`,
    fix: "give a readable PEM file holding one or more certificates"
  }),
  EgressOnly: (subject) => ({
    what: `${subject} means nothing without --egress`,
    fix: `add --egress FILE, or drop ${subject}`
  }),
  ForwardTarget: (subject, value) => ({
    what: `${subject} ${JSON.stringify(value)} is not usable`,
    fix: "give --listen 127.0.0.1:PORT (or another address of the container) and --to unix:/abs/path.sock"
  }),
  MissingAnswer: (subject) => ({
    what: `no answer after ${subject}`,
    fix: "give it: credproxy approve ID y (once), a (for the session) or n (refuse)"
  }),
  InvalidEndpoint: (subject, problem) => ({
    what: `${subject} ${problem}`,
    fix: "give an https URL (plain http only on 127.0.0.1, ::1 or localhost)"
  }),
  SecretFile: (file, problem) => ({
    what: `the client secret file ${file} ${problem}`,
    fix: "give a readable file that holds the client secret alone"
  }),
  EmptyValue: (subject) => ({
    what: `${subject} is empty`,
    fix: `give ${subject} a value`
  }),
  OptionNeedsFlow: (subject, flow) => ({
    what: `${subject} is only for --flow ${flow}`,
    fix: `drop ${subject}, or add --flow ${flow}`
  }),
  IssuerMetadata: (issuer, problem) => ({
    what: `the metadata of ${issuer} cannot be used: ${problem}`,
    fix: "check the --issuer URL (its /.well-known/openid-configuration must answer), or choose another --flow"
  }),
  NotACode: (subject, problem) => ({
    what: `${subject} is not a code: ${problem}`,
    fix: "paste the code exactly as the provider shows it (CODE, or CODE#STATE)"
  }),
  NoCodePasted: (subject) => ({
    what: `no code was pasted: ${subject} ended`,
    fix: "run the login again and paste the code the provider shows, then press Enter"
  }),
  SessionTimeout: (subject, value) => ({
    what: `${subject} is ${JSON.stringify(value)}`,
    fix: `set ${subject} to a whole number of seconds, 1 or more, or unset it`
  }),
  LoginProvider: (provider, problem) => ({
    what: problem,
    fix: `fix the entry of ${provider} in the providers file (see credproxy providers add --help)`
  })
}
