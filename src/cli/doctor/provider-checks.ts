import * as fs from "node:fs"
import * as path from "node:path"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import { DEFAULT_PROVIDERS_FILE, load } from "../../config/providers-file.js"
import { errorCode } from "../../errors/errors.js"
import { oauthErrorCode } from "../../errors/provider-call.js"
import { discover } from "../../layers/oauth-http.js"
import { endpointProblem, type OAuthProvider } from "../../services/OAuthProviders.js"
import { BUDGET, type Check, type DoctorInput, explained, type Finding, fail, ok, warn } from "./check.js"

/** At most this many providers' endpoints are asked, 8 at a time, so the check stays within its budget. */
const MAX_PROBED = 16
/** Of an endpoint's answer only this much is read, and only its `error` code is kept. */
const MAX_ANSWER_BYTES = 4096

const fileOf = (input: DoctorInput): string =>
  path.resolve(input.providersFile ?? path.join(input.dataDir, DEFAULT_PROVIDERS_FILE))

/** The providers file, read quietly (its own warning becomes a finding here). */
const loadQuietly = (input: DoctorInput) =>
  load({ dataDir: input.dataDir, file: input.providersFile }).pipe(Logger.withMinimumLogLevel(LogLevel.None))

/** The providers file is valid (PROTOCOL.md §16), and holds no client secret others can read. */
export const providersCheck: Check = {
  name: "providers",
  run: (input) =>
    Effect.gen(function* () {
      const file = fileOf(input)
      if (input.providersFile === undefined && !fs.existsSync(file)) {
        return [
          ok("providers", `no providers file at ${file}: tokens are served, never refreshed on the host`)
        ]
      }
      const providers = yield* loadQuietly(input)
      const names = providers.map((p) => p.name).sort()
      const findings: Array<Finding> = [
        ok(
          "providers",
          `${file}: ${names.length} provider${names.length === 1 ? "" : "s"} (${names.join(", ")})`
        )
      ]
      const mode = fs.statSync(file).mode
      if ((mode & 0o077) !== 0 && providers.some((p) => p.clientSecret !== undefined)) {
        findings.push(
          warn("providers", `${file} holds a client secret and others may read it`, `chmod 600 ${file}`)
        )
      }
      return findings
    }).pipe(
      Effect.catchTag("UsageError", (error) =>
        Effect.succeed([explained("providers", "fail", error.explained)])
      )
    )
}

/** An endpoint as shown: no user part, no query (they may hold secrets). */
const shown = (url: URL): string => `${url.origin}${url.pathname}`

/** What the token endpoint's answer to an empty refresh-token grant says about it. */
const judge = (name: string, url: URL, status: number, body: string | undefined): Finding => {
  const check = `provider ${name}`
  const where = shown(url)
  const fixUrl = `correct tokenEndpoint (or issuer) of ${name} in the providers file`
  if (status === 400 || status === 401) {
    let code: string | undefined
    try {
      const json = JSON.parse(body ?? "") as { error?: unknown }
      code = oauthErrorCode(json.error)
    } catch {
      code = undefined
    }
    return code === undefined || code === "unrecognized"
      ? ok(check, `${where} answers (HTTP ${status})`)
      : ok(check, `${where} answers as an OAuth token endpoint (HTTP ${status} ${code})`)
  }
  if (status === 404 || status === 405) {
    return fail(check, `${where} answered HTTP ${status}: no token endpoint at this URL`, fixUrl)
  }
  if (status >= 500)
    return warn(check, `${where} answered HTTP ${status}`, "the provider has trouble: retry later")
  if (status >= 300 && status < 400) {
    return warn(check, `${where} redirects (HTTP ${status})`, `give the final URL: ${fixUrl}`)
  }
  return warn(check, `${where} answered HTTP ${status}, not as a token endpoint does`, fixUrl)
}

/** The start of an answer's body (at most MAX_ANSWER_BYTES are kept); the rest is not read. */
const readSome = async (body: ReadableStream<Uint8Array> | null): Promise<string | undefined> => {
  if (body === null) return undefined
  const reader = body.getReader()
  const chunks: Array<Uint8Array> = []
  let size = 0
  try {
    while (size <= MAX_ANSWER_BYTES) {
      const next = await reader.read()
      if (next.done) break
      chunks.push(next.value)
      size += next.value.length
    }
  } finally {
    await reader.cancel().catch(() => undefined)
  }
  return Buffer.concat(chunks).subarray(0, MAX_ANSWER_BYTES).toString("utf8")
}

/** The endpoint to ask: the provider's own, or the one its issuer's metadata names. */
const tokenEndpointOf = async (provider: OAuthProvider, signal: AbortSignal): Promise<URL | Finding> => {
  if (provider.tokenEndpoint !== undefined) return new URL(provider.tokenEndpoint)
  const issuer = new URL(provider.issuer ?? "")
  const metadata = await discover(issuer, signal).catch((error: unknown) => error)
  const check = `provider ${provider.name}`
  if (metadata instanceof Error || typeof metadata !== "object" || metadata === null) {
    const code = errorCode((metadata as { cause?: unknown })?.cause) ?? (metadata as Error)?.name ?? "error"
    return fail(
      check,
      `the metadata of issuer ${shown(issuer)} cannot be read (${code})`,
      `check the issuer of ${provider.name}, or give its tokenEndpoint`
    )
  }
  const endpoint = (metadata as { token_endpoint?: string }).token_endpoint
  if (endpoint === undefined || endpointProblem(endpoint) !== undefined) {
    return fail(
      check,
      `the metadata of issuer ${shown(issuer)} names no usable token endpoint`,
      `give tokenEndpoint for ${provider.name} in the providers file`
    )
  }
  return new URL(endpoint)
}

/**
 * Asks the provider's token endpoint (discovered from its issuer when that is
 * all there is) with an empty refresh-token grant: no client id, no token,
 * no secret, so nothing can be granted; any HTTP answer shows it is there.
 */
const probe = (provider: OAuthProvider): Effect.Effect<Finding> => {
  const check = `provider ${provider.name}`
  return Effect.tryPromise({
    try: async (signal) => {
      const endpoint = await tokenEndpointOf(provider, signal)
      if (!(endpoint instanceof URL)) return endpoint
      const response = await fetch(endpoint, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", accept: "application/json" },
        body: "grant_type=refresh_token",
        redirect: "manual",
        signal
      })
      return judge(provider.name, endpoint, response.status, await readSome(response.body))
    },
    catch: (error) => error
  }).pipe(
    Effect.catchAll((error) => {
      const where = provider.tokenEndpoint ?? provider.issuer ?? ""
      const code = errorCode((error as { cause?: unknown }).cause) ?? (error as Error).name ?? "error"
      return Effect.succeed(
        fail(
          check,
          `cannot reach ${shown(new URL(where))} (${code})`,
          "check the URL, and that this host reaches it (DNS, proxy, firewall)"
        )
      )
    }),
    Effect.timeoutTo({
      duration: BUDGET.endpoint,
      onSuccess: (finding) => finding,
      onTimeout: () =>
        fail(
          check,
          `${shown(new URL(provider.tokenEndpoint ?? provider.issuer ?? ""))} did not answer within ${Duration.toSeconds(BUDGET.endpoint)} s`,
          "check that this host reaches it (proxy, firewall), or that the provider is up"
        )
    })
  )
}

/** Each configured provider's token endpoint answers (a short timeout each, all at once). */
export const endpointsCheck: Check = {
  name: "provider endpoints",
  run: (input) =>
    loadQuietly(input).pipe(
      Effect.flatMap((providers) => {
        const probed = Effect.forEach(providers.slice(0, MAX_PROBED), probe, { concurrency: 8 })
        if (providers.length <= MAX_PROBED) return probed
        return Effect.map(probed, (findings) => [
          ...findings,
          warn(
            "provider endpoints",
            `${providers.length - MAX_PROBED} more providers were not asked`,
            "run doctor with a providers file of fewer providers to check them"
          )
        ])
      }),
      // A bad file is the providers check's finding.
      Effect.orElseSucceed(() => [])
    )
}
