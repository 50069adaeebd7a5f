import * as fs from "node:fs"
import * as path from "node:path"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import { errorCode } from "../errors/errors.js"
import { UsageError } from "../errors/usage.js"
import { HOP_BY_HOP_HEADERS } from "../protocol/hop-by-hop.js"
import { DEFAULT_BUCKET, isValidName, NAME_RULE } from "../protocol/names.js"
import { fieldIssueOf } from "../protocol/parse-issue.js"
import type { TokenKey } from "../services/TokenStore.js"

/**
 * The egress routes file (`serve --egress FILE`, docs/PROTOCOL.md §23):
 * which provider APIs the sandbox may reach through credproxy, with which
 * stored credential, in which header. Checked whole at start-up; a problem is
 * a `UsageError` (exit 2) naming the route and the field, never quoting a
 * value (a routes file holds no secret, but the rule is the providers file's).
 */

/** The largest routes file read (a handful of routes is a few KiB). */
export const MAX_ROUTES_FILE_BYTES = 256 * 1024
/** The most routes one file may hold. */
export const MAX_ROUTES = 64

/** One `allow` entry: a method and a path, the path a prefix when it ended in `*`. */
export interface AllowRule {
  readonly method: string
  readonly path: string
  readonly prefix: boolean
}

export type RouteCredential =
  | { readonly kind: "apiKey"; readonly name: string }
  | { readonly kind: "token"; readonly key: TokenKey }

export interface EgressRoute {
  readonly name: string
  /** `https://host[:port]` (or `http://` on a loopback host). */
  readonly origin: string
  /** The upstream's base path without a trailing slash (`""` for none). */
  readonly basePath: string
  readonly credential: RouteCredential
  /** Lowercase header name the credential travels in, both ways. */
  readonly header: string
  /** `Bearer` and the like; the header's value is then `{scheme} {credential}`. */
  readonly scheme: string | undefined
  /** Undefined: every method and path. */
  readonly allow: ReadonlyArray<AllowRule> | undefined
  /** Variables `exec` sets, with `{url}` and `{phantom}` still in them. */
  readonly env: Readonly<Record<string, string>>
}

const optional = <S extends Schema.Schema.Any>(schema: S) => Schema.optionalWith(schema, { exact: true })
const text = (rule: string) =>
  Schema.String.annotations({ message: () => rule }).pipe(Schema.minLength(1, { message: () => rule }))

const HEADER_TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$/
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/
const ALLOW_ENTRY = /^([A-Z]{1,16}) (\/[^\s*?#]{0,1023})(\*?)$/
/** Headers a route may not use for its credential: hop-by-hop ones and those the proxy sets itself. */
const RESERVED_HEADERS = new Set([...HOP_BY_HOP_HEADERS, "host", "content-length", "expect"])

const RouteEntry = Schema.Struct({
  upstream: text("must be a URL string"),
  credential: Schema.Union(
    Schema.Struct({ apiKey: text("must be a key name") }),
    Schema.Struct({ token: text("must be a provider name"), bucket: optional(text("must be a bucket name")) })
  ).annotations({ message: () => 'must be {"apiKey": NAME} or {"token": PROVIDER, "bucket": BUCKET}' }),
  header: text("must be a header name"),
  scheme: optional(text("must be a non-empty string such as Bearer")),
  allow: optional(
    Schema.Array(Schema.String).annotations({ message: () => 'must be an array of "METHOD /path" strings' })
  ),
  env: optional(
    Schema.Record({ key: Schema.String, value: Schema.String }).annotations({
      message: () => "must be an object of variable name to string"
    })
  )
})

const decodeEntry = Schema.decodeUnknownEither(RouteEntry, { onExcessProperty: "error", errors: "first" })

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

const LOOPBACK_HOSTS = new Set(["127.0.0.1", "localhost", "[::1]"])

/** The upstream's origin and base path, or what is wrong with it. */
const parseUpstream = (value: string): Either.Either<{ origin: string; basePath: string }, string> => {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    return Either.left("field upstream is not a URL")
  }
  const loopback = LOOPBACK_HOSTS.has(url.hostname) || url.hostname.startsWith("127.")
  if (url.protocol !== "https:" && !(url.protocol === "http:" && loopback)) {
    return Either.left("field upstream must be an https URL (plain http only on a loopback host)")
  }
  if (url.username !== "" || url.password !== "")
    return Either.left("field upstream may not hold a user or password")
  if (url.search !== "" || url.hash !== "")
    return Either.left("field upstream may not hold a query or fragment")
  return Either.right({ origin: url.origin, basePath: url.pathname.replace(/\/+$/, "") })
}

const parseAllow = (entries: ReadonlyArray<string>): Either.Either<Array<AllowRule>, string> => {
  const rules: Array<AllowRule> = []
  for (const [index, entry] of entries.entries()) {
    const match = ALLOW_ENTRY.exec(entry)
    if (match === null) {
      return Either.left(
        `field allow.${index} must be "METHOD /path" (an upper-case method, a path, * only at its end)`
      )
    }
    rules.push({ method: match[1]!, path: match[2]!, prefix: match[3] === "*" })
  }
  return Either.right(rules)
}

const parseEnv = (env: Readonly<Record<string, string>>): Either.Either<Record<string, string>, string> => {
  for (const name of Object.keys(env)) {
    if (!ENV_NAME.test(name))
      return Either.left(`field env has an invalid variable name (letters, digits, _)`)
    if (name.startsWith("LLXPRT_")) return Either.left(`field env.${name} is set by credproxy itself`)
  }
  return Either.right({ ...env })
}

const parseRoute = (name: string, value: unknown): Either.Either<EgressRoute, string> =>
  Either.gen(function* () {
    if (!isObject(value)) return yield* Either.left("its settings must be an object")
    const entry = yield* Either.mapLeft(decodeEntry(value), (error) => {
      const issue = fieldIssueOf(error)
      return issue.path.length === 0 ? issue.rule : `field ${issue.path.join(".")} ${issue.rule}`
    })
    const upstream = yield* parseUpstream(entry.upstream)
    const credential: RouteCredential =
      "apiKey" in entry.credential
        ? { kind: "apiKey", name: entry.credential.apiKey }
        : {
            kind: "token",
            key: { provider: entry.credential.token, bucket: entry.credential.bucket ?? DEFAULT_BUCKET }
          }
    const names =
      credential.kind === "apiKey" ? [credential.name] : [credential.key.provider, credential.key.bucket]
    if (!names.every(isValidName))
      return yield* Either.left(`field credential holds an invalid name: a name is ${NAME_RULE}`)
    const header = entry.header.toLowerCase()
    if (!HEADER_TOKEN.test(header) || RESERVED_HEADERS.has(header)) {
      return yield* Either.left(
        "field header must be a header name that is not hop-by-hop, host or content-length"
      )
    }
    if (entry.scheme !== undefined && !HEADER_TOKEN.test(entry.scheme)) {
      return yield* Either.left("field scheme must be one word such as Bearer")
    }
    const allow = entry.allow === undefined ? undefined : yield* parseAllow(entry.allow)
    const env = yield* parseEnv(entry.env ?? {})
    return { name, ...upstream, credential, header, scheme: entry.scheme, allow, env }
  })

/** Checks the parsed contents of a routes file; `Left` is the message (without the file name). */
export const parseRoutes = (json: unknown): Either.Either<Array<EgressRoute>, string> => {
  if (!isObject(json) || !isObject(json.routes)) return Either.left('must hold {"routes": {NAME: {...}}}')
  const entries = Object.entries(json.routes)
  if (entries.length === 0) return Either.left('"routes" is empty: name at least one route')
  if (entries.length > MAX_ROUTES) return Either.left(`holds more than ${MAX_ROUTES} routes`)
  const routes: Array<EgressRoute> = []
  for (const [name, value] of entries) {
    if (!isValidName(name))
      return Either.left(`route name ${JSON.stringify(name)} is invalid: a name is ${NAME_RULE}`)
    const route = parseRoute(name, value)
    if (Either.isLeft(route)) return Either.left(`route ${name}: ${route.left}`)
    routes.push(route.right)
  }
  return Either.right(routes)
}

const usage = (file: string, problem: string) =>
  new UsageError({ reason: "EgressFile", subject: file, detail: problem })

/** Reads and checks the routes file named by `--egress`. */
export const loadRoutes = (file: string): Effect.Effect<Array<EgressRoute>, UsageError> =>
  Effect.gen(function* () {
    const resolved = path.resolve(file)
    const contents = yield* Effect.try({
      try: () => {
        const stat = fs.statSync(resolved)
        if (!stat.isFile()) return { problem: "is not a regular file" }
        if (stat.size > MAX_ROUTES_FILE_BYTES)
          return { problem: `is larger than ${MAX_ROUTES_FILE_BYTES} bytes` }
        return { text: fs.readFileSync(resolved, "utf8") }
      },
      catch: (cause) => usage(resolved, `cannot be read (${errorCode(cause) ?? "unknown error"})`)
    })
    if (contents.text === undefined) return yield* usage(resolved, contents.problem ?? "is not usable")
    let json: unknown
    try {
      json = JSON.parse(contents.text)
    } catch {
      return yield* usage(resolved, "is not valid JSON")
    }
    return yield* Either.mapLeft(parseRoutes(json), (problem) => usage(resolved, problem))
  })
