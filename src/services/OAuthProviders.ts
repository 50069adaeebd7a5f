import * as Context from "effect/Context"
import type { LoginFlow } from "../protocol/login.js"

/** How the host logs in to a provider (PROTOCOL.md §17); every field optional. */
export interface LoginSettings {
  /** Default: `device_code` when a device authorization endpoint is known, else `browser_redirect`. */
  readonly flow?: LoginFlow
  /** Where the provider sends the browser after a `pkce_redirect` login (a page that shows the code). */
  readonly redirectUri?: string
  /** Extra parameters of the authorization (and device authorization) request, e.g. `audience`. */
  readonly authorizationParams?: Readonly<Record<string, string>>
}

/**
 * One OAuth provider the host can refresh tokens with (PROTOCOL.md §16), as
 * validated from the providers file. Either `tokenEndpoint` or `issuer` is
 * set; with only an issuer, the token endpoint comes from its metadata.
 */
export interface OAuthProvider {
  /** The provider name used on the socket (§8 name rule). */
  readonly name: string
  readonly tokenEndpoint?: string
  readonly clientId: string
  /** Set for confidential clients (`client_secret_post`); absent for public clients. */
  readonly clientSecret?: string
  readonly scopes: ReadonlyArray<string>
  /** Metadata discovery, and the expected `iss` of ID tokens in refresh answers. */
  readonly issuer?: string
  /** For logins (§17); with an issuer, missing ones come from its metadata. */
  readonly authorizationEndpoint?: string
  readonly deviceAuthorizationEndpoint?: string
  readonly login?: LoginSettings
}

/** The configured providers, by name. Fixed for the life of the process. */
export interface OAuthProvidersShape {
  readonly get: (name: string) => OAuthProvider | undefined
  /** Every configured name, sorted. */
  readonly names: ReadonlyArray<string>
}

export class OAuthProviders extends Context.Tag("credproxy/OAuthProviders")<
  OAuthProviders,
  OAuthProvidersShape
>() {}

export const make = (providers: ReadonlyArray<OAuthProvider>): OAuthProvidersShape => {
  const byName = new Map(providers.map((provider) => [provider.name, provider]))
  const names = [...byName.keys()].sort()
  return { get: (name) => byName.get(name), names }
}

/** Hosts where plain `http` is allowed (§16): the loopback interface only. */
const LOOPBACK_HOSTS = new Set(["127.0.0.1", "[::1]", "localhost"])

/** Why `value` is not an acceptable endpoint, or `undefined` when it is: https, or http on a loopback host. */
export const endpointProblem = (value: string): string | undefined => {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    return "must be an absolute URL"
  }
  if (url.protocol === "https:") return undefined
  if (url.protocol === "http:" && LOOPBACK_HOSTS.has(url.hostname)) return undefined
  return "must be an https URL (http is allowed only on 127.0.0.1, ::1 or localhost)"
}

/** True for an `http:` URL on a loopback host: the only case where the OAuth client may skip https. */
export const isLoopbackHttp = (url: URL): boolean =>
  url.protocol === "http:" && LOOPBACK_HOSTS.has(url.hostname)
