import * as fs from "node:fs"
import * as path from "node:path"
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Console from "effect/Console"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import { DEFAULT_PROVIDERS_FILE } from "../config/providers-file.js"
import { writeProviderEntry } from "../config/providers-file-write.js"
import { describeProviderCall, type ProviderCallIssue } from "../errors/provider-call.js"
import { UsageError } from "../errors/usage.js"
import { checkDataDir } from "../layers/file-store/data-dir-check.js"
import * as OAuthLoginClient from "../layers/OAuthLoginClient.js"
import { LOGIN_FLOWS, type LoginFlow } from "../protocol/login.js"
import { chooseFlow } from "../services/LoginSessions.js"
import { endpointProblem, type OAuthProvider } from "../services/OAuthProviders.js"
import { PROVIDER_CALL_TIMEOUT_MS } from "../services/RefreshCoordinator.js"
import { requireName } from "./names.js"
import * as shared from "./options.js"
import { providersFile } from "./options.js"

/** A URL option: https, or http on a loopback host (§16). */
const requireEndpoint = (value: string, option: string) => {
  const problem = endpointProblem(value)
  return problem === undefined
    ? Effect.succeed(value)
    : Effect.fail(new UsageError({ reason: "InvalidEndpoint", subject: option, detail: problem }))
}

const readSecretFile = (file: string) =>
  Effect.try({
    try: () => fs.readFileSync(file, "utf8").trim(),
    catch: () => new UsageError({ reason: "SecretFile", subject: file, detail: "cannot be read" })
  }).pipe(
    Effect.filterOrFail(
      (secret) => secret !== "",
      () => new UsageError({ reason: "SecretFile", subject: file, detail: "is empty" })
    )
  )

/** What the issuer's metadata lacks for `flow`, in the words of the metadata. */
const METADATA_FIELD = {
  authorizationEndpoint: "authorization_endpoint",
  deviceAuthorizationEndpoint: "device_authorization_endpoint",
  redirectUri: "redirect URI (give --redirect-uri)"
} as const

/**
 * `credproxy providers add NAME --issuer URL --client-id ID ...` (PROTOCOL.md
 * §17): reads the issuer's metadata (OpenID Connect discovery, then RFC
 * 8414), checks that the login flow is possible (`--flow`, else device_code
 * when the metadata has a device endpoint, else browser_redirect), and
 * writes the entry into the providers file. A metadata document that cannot
 * be fetched, or lacks what the flow needs, exits 2 saying what is missing.
 */
export const addCommand = Command.make(
  "add",
  {
    dataDir: shared.dataDir,
    providers: providersFile,
    issuer: Options.text("issuer").pipe(
      Options.withDescription("the provider's issuer URL (its metadata is read)")
    ),
    clientId: Options.text("client-id").pipe(Options.withDescription("the OAuth client id")),
    clientSecretFile: Options.file("client-secret-file").pipe(
      Options.withDescription("a file holding the client secret (confidential clients)"),
      Options.optional
    ),
    scope: shared.repeated(Options.text("scope"), "a scope to ask for (repeatable)"),
    flow: Options.choice("flow", LOGIN_FLOWS).pipe(
      Options.withDescription(
        "how to log in (default: device_code when the provider offers it, else browser_redirect)"
      ),
      Options.optional
    ),
    redirectUri: Options.text("redirect-uri").pipe(
      Options.withDescription("pkce_redirect: where the provider shows the code to paste"),
      Options.optional
    ),
    name: Args.text({ name: "NAME" }).pipe(Args.withDescription("the provider name used on the socket"))
  },
  (flags) =>
    Effect.gen(function* () {
      const name = yield* requireName(flags.name, "provider")
      const issuer = yield* requireEndpoint(flags.issuer, "--issuer")
      if (flags.clientId === "")
        return yield* new UsageError({ reason: "EmptyValue", subject: "--client-id" })
      const redirectUri = Option.getOrUndefined(flags.redirectUri)
      if (redirectUri !== undefined) yield* requireEndpoint(redirectUri, "--redirect-uri")
      const asked: LoginFlow | undefined =
        Option.getOrUndefined(flags.flow) ?? (redirectUri === undefined ? undefined : "pkce_redirect")
      if (redirectUri !== undefined && asked !== "pkce_redirect") {
        return yield* new UsageError({
          reason: "OptionNeedsFlow",
          subject: "--redirect-uri",
          detail: "pkce_redirect"
        })
      }
      const clientSecret = Option.isSome(flags.clientSecretFile)
        ? yield* readSecretFile(flags.clientSecretFile.value)
        : undefined
      const dataDir = yield* checkDataDir(flags.dataDir, { create: flags.providers === undefined })
      const file = path.resolve(
        flags.providers ?? path.join(dataDir ?? flags.dataDir, DEFAULT_PROVIDERS_FILE)
      )

      const provider: OAuthProvider = {
        name,
        issuer,
        clientId: flags.clientId,
        scopes: flags.scope,
        ...(clientSecret === undefined ? {} : { clientSecret }),
        ...(asked === undefined
          ? {}
          : { login: { flow: asked, ...(redirectUri === undefined ? {} : { redirectUri }) } })
      }
      const client = yield* OAuthLoginClient.make
      const server = yield* client.server(provider).pipe(
        Effect.timeoutFail({
          duration: Duration.millis(PROVIDER_CALL_TIMEOUT_MS),
          onTimeout: (): ProviderCallIssue => ({ reason: "Transient", kind: "Timeout" })
        }),
        Effect.mapError(
          (issue) =>
            new UsageError({
              reason: "IssuerMetadata",
              subject: issuer,
              detail:
                issue.kind === "NoEndpoint" ? "it has no usable token_endpoint" : describeProviderCall(issue)
            })
        )
      )
      const flow = chooseFlow(provider, server, asked)
      if (Either.isLeft(flow)) {
        return yield* new UsageError({
          reason: "IssuerMetadata",
          subject: issuer,
          detail: `it has no ${METADATA_FIELD[flow.left.missing]}, which ${flow.left.flow} needs`
        })
      }
      yield* writeProviderEntry(file, name, {
        issuer,
        clientId: flags.clientId,
        ...(clientSecret === undefined ? {} : { clientSecret }),
        ...(flags.scope.length === 0 ? {} : { scopes: flags.scope }),
        login: { flow: flow.right, ...(redirectUri === undefined ? {} : { redirectUri }) }
      })
      yield* Console.log(JSON.stringify({ event: "provider_added", provider: name, flow: flow.right, file }))
    })
).pipe(Command.withDescription("add an OAuth provider from its issuer's metadata to the providers file"))
