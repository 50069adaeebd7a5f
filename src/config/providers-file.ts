import * as fs from "node:fs"
import * as path from "node:path"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import { errorCode } from "../errors/errors.js"
import { UsageError } from "../errors/usage.js"
import { LOGIN_FLOWS, LoginFlow } from "../protocol/login.js"
import { isValidName, NAME_RULE } from "../protocol/names.js"
import { fieldIssueOf } from "../protocol/parse-issue.js"
import { endpointProblem, type OAuthProvider } from "../services/OAuthProviders.js"

/**
 * The providers file (PROTOCOL.md §16): `serve --providers FILE`, else
 * `{dataDir}/providers.json`. The default file may be missing (no providers);
 * a file named on the command line must exist. Everything is checked at
 * start-up, and a problem is a `UsageError` (exit 2) that names the provider
 * and the field. Messages never quote a value from the file: it may hold
 * client secrets.
 */

export const DEFAULT_PROVIDERS_FILE = "providers.json"

const NonEmptyString = Schema.String.annotations({ message: () => "must be a non-empty string" }).pipe(
  Schema.minLength(1, { message: () => "must be a non-empty string" })
)

const Endpoint = Schema.String.annotations({ message: () => "must be a URL string" }).pipe(
  Schema.filter((value) => endpointProblem(value))
)

/** One provider's entry; unknown fields are refused (a `client_id` typo must not pass silently). */
const optional = <S extends Schema.Schema.Any>(schema: S) => Schema.optionalWith(schema, { exact: true })

/**
 * Parameters the login sets itself: `authorizationParams` may not name them
 * (a typo or a copy must not replace the state, the PKCE challenge or the
 * redirect the host listens on).
 */
export const RESERVED_AUTHORIZATION_PARAMS: ReadonlySet<string> = new Set([
  "client_id",
  "client_secret",
  "redirect_uri",
  "response_type",
  "response_mode",
  "scope",
  "state",
  "code_challenge",
  "code_challenge_method",
  "code_verifier",
  "grant_type",
  "device_code"
])
/** At most this many extra parameters. */
const MAX_AUTHORIZATION_PARAMS = 32

const AuthorizationParams = Schema.Record({
  key: Schema.String,
  value: Schema.String.annotations({ message: () => "must be a string" })
}).pipe(
  Schema.filter((params) => {
    const names = Object.keys(params)
    if (names.length > MAX_AUTHORIZATION_PARAMS)
      return `must have at most ${MAX_AUTHORIZATION_PARAMS} entries`
    const reserved = names.find((name) => RESERVED_AUTHORIZATION_PARAMS.has(name))
    return reserved === undefined ? undefined : `must not set ${reserved}: the login sets it`
  })
)

const LoginEntry = Schema.Struct({
  flow: optional(LoginFlow.annotations({ message: () => `must be one of ${LOGIN_FLOWS.join(", ")}` })),
  redirectUri: optional(Endpoint),
  authorizationParams: optional(AuthorizationParams)
})

const ProviderEntry = Schema.Struct({
  tokenEndpoint: optional(Endpoint),
  clientId: NonEmptyString,
  clientSecret: optional(NonEmptyString),
  scopes: optional(
    Schema.Array(Schema.String.annotations({ message: () => "must be a string" })).annotations({
      message: () => "must be an array of strings"
    })
  ),
  issuer: optional(Endpoint),
  authorizationEndpoint: optional(Endpoint),
  deviceAuthorizationEndpoint: optional(Endpoint),
  login: optional(LoginEntry)
})

const decodeEntry = Schema.decodeUnknownEither(ProviderEntry, { onExcessProperty: "error", errors: "first" })

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

/** The first problem of an entry, as `field NAME RULE` (the path only, never the value). */
const describeEntryIssue = (error: Parameters<typeof fieldIssueOf>[0]): string => {
  const issue = fieldIssueOf(error)
  return issue.path.length === 0 ? issue.rule : `field ${issue.path.join(".")} ${issue.rule}`
}

/** Checks the parsed contents of the providers file; `Left` is the message (without the file name). */
export const parseProviders = (json: unknown): Either.Either<Array<OAuthProvider>, string> => {
  if (!isObject(json)) return Either.left("must hold a JSON object")
  if (!("providers" in json)) return Either.left('has no "providers" object')
  const entries = json.providers
  if (!isObject(entries)) return Either.left('"providers" must be an object of provider name to settings')
  const providers: Array<OAuthProvider> = []
  for (const [name, value] of Object.entries(entries)) {
    if (!isValidName(name)) {
      return Either.left(`provider name ${JSON.stringify(name)} is invalid: a name is ${NAME_RULE}`)
    }
    if (!isObject(value)) return Either.left(`provider ${name}: its settings must be an object`)
    const decoded = decodeEntry(value)
    if (Either.isLeft(decoded)) return Either.left(`provider ${name}: ${describeEntryIssue(decoded.left)}`)
    const entry = decoded.right
    if (entry.tokenEndpoint === undefined && entry.issuer === undefined) {
      return Either.left(
        `provider ${name}: field tokenEndpoint is missing (give tokenEndpoint, or an issuer whose metadata has one)`
      )
    }
    if (entry.login?.flow === "pkce_redirect" && entry.login.redirectUri === undefined) {
      return Either.left(`provider ${name}: field login.redirectUri is missing (pkce_redirect needs it)`)
    }
    providers.push({ ...entry, name, scopes: entry.scopes ?? [] })
  }
  return Either.right(providers)
}

const usage = (file: string, problem: string) =>
  new UsageError({ reason: "ProvidersFile", subject: file, detail: problem })

/**
 * Reads and checks the providers file (PROTOCOL.md §16). `file` is the `--providers` flag (must
 * exist); without it, `{dataDir}/providers.json` is read if it is there.
 */
export const load = (options: {
  readonly dataDir: string
  readonly file?: string | undefined
}): Effect.Effect<Array<OAuthProvider>, UsageError> =>
  Effect.gen(function* () {
    const explicit = options.file !== undefined
    const file = path.resolve(options.file ?? path.join(options.dataDir, DEFAULT_PROVIDERS_FILE))
    const contents = yield* Effect.try({
      try: () => {
        const stat = fs.statSync(file)
        if (!stat.isFile()) return { problem: "is not a regular file" } as const
        return { text: fs.readFileSync(file, "utf8"), mode: stat.mode } as const
      },
      catch: (cause) => cause
    }).pipe(
      Effect.catchAll((cause) =>
        !explicit && errorCode(cause) === "ENOENT"
          ? Effect.succeed(undefined)
          : Effect.fail(
              usage(
                file,
                errorCode(cause) === "ENOENT"
                  ? "does not exist (fix the --providers path, or leave it out)"
                  : `cannot be read (${errorCode(cause) ?? "unknown error"})`
              )
            )
      )
    )
    if (contents === undefined) return []
    if ("problem" in contents) return yield* usage(file, contents.problem ?? "is not usable")
    let json: unknown
    try {
      json = JSON.parse(contents.text)
    } catch {
      // The parser's message may quote the file's text, and the file may hold secrets.
      return yield* usage(file, "is not valid JSON")
    }
    const providers = yield* Either.mapLeft(parseProviders(json), (problem) => usage(file, problem))
    if ((contents.mode & 0o077) !== 0 && providers.some((p) => p.clientSecret !== undefined)) {
      yield* Effect.logWarning(
        `providers file ${file} holds a client secret but is readable by others; chmod 600 it`
      )
    }
    return providers
  })
