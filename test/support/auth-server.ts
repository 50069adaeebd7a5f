import * as http from "node:http"
import type { AddressInfo } from "node:net"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as oauth from "oauth4webapi"
import Provider from "oidc-provider"

/**
 * A real OAuth 2.0 / OpenID Connect authorization server on loopback for the
 * tests: `oidc-provider` with refresh-token rotation (a used refresh token is
 * consumed; presenting it again is `invalid_grant` and revokes the grant),
 * the device authorization grant (RFC 8628, unless `deviceFlow: false`) and
 * PKCE required. Clients: `cli` (public, access tokens for 300 s),
 * `cli-short` (public, 2 s), `conf` (confidential, `client_secret_post`) and
 * `login` (public, native: any loopback port may receive its redirect; every
 * grant; access tokens for an hour, so that a proxy's proactive renewal stays
 * out of a test's way). Tokens come from its pages driven over HTTP as a
 * user's browser would: the development login and consent pages, the device
 * code pages.
 */

export const REDIRECT_URI = "http://127.0.0.1/callback"
export const CONFIDENTIAL_SECRET = "conf-secret-0123456789"
const DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"

/** The token endpoint's JSON answer. */
export interface TokenSet {
  readonly access_token: string
  readonly refresh_token: string
  readonly expires_in: number
  readonly token_type: string
  readonly id_token?: string
  readonly scope?: string
}

export interface AuthServerOptions {
  /** The device authorization grant (its endpoint in the metadata); default on. */
  readonly deviceFlow?: boolean
  /** The `interval` (seconds) its device authorization answers carry; default none (clients use 5 s). */
  readonly deviceInterval?: number
  /** How long a device code lives (seconds); default 600. */
  readonly deviceCodeTtl?: number
}

export interface AuthServer {
  readonly issuer: string
  readonly tokenEndpoint: string
  /** POST requests to the token endpoint so far (every grant type). */
  readonly tokenRequests: () => number
  /** Token requests of the device code grant (RFC 8628 polls) so far, counted when answered. */
  readonly deviceTokenRequests: () => number
  /** Every code, verifier and device code a client sent to the token endpoint (secrets a log must not hold). */
  readonly seenSecrets: () => ReadonlyArray<string>
  /** Holds every token-endpoint request this long before handling it (a slow provider). */
  readonly setTokenDelay: (ms: number) => void
  /** Answers the next `n` device polls that would be `authorization_pending` with `slow_down` instead. */
  readonly slowDownNext: (n: number) => void
  /** Logs `account` in with `clientId` (code flow, PKCE, consent to offline_access) and returns the tokens. */
  readonly login: (clientId: string, account?: string) => Promise<TokenSet>
  /**
   * A user's browser at `url` (an authorization URL, or a device verification URL): logs
   * `account` in, consents (or, with `deny`, aborts), enters `userCode` where a page asks for
   * it, and follows redirects until one goes to `stopAt` (returned, not followed) or the device
   * flow's last page (returns `undefined`).
   */
  readonly browse: (
    url: string,
    options?: {
      readonly account?: string
      readonly userCode?: string
      readonly deny?: boolean
      readonly stopAt?: (location: string) => boolean
    }
  ) => Promise<string | undefined>
  /** Asks the userinfo endpoint whether an access token is live. */
  readonly userinfoStatus: (accessToken: string) => Promise<number>
}

const client = (clientId: string, extra: Readonly<Record<string, unknown>> = {}) => ({
  client_id: clientId,
  token_endpoint_auth_method: "none",
  grant_types: ["authorization_code", "refresh_token"],
  response_types: ["code"],
  redirect_uris: [REDIRECT_URI],
  ...extra
})

/** A cookie jar just good enough for the provider's pages. */
class Browser {
  private readonly cookies = new Map<string, string>()
  constructor(private readonly base: string) {}

  async go(url: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers)
    if (this.cookies.size > 0) {
      headers.set("cookie", [...this.cookies].map(([name, value]) => `${name}=${value}`).join("; "))
    }
    const response = await fetch(new URL(url, this.base), { ...init, headers, redirect: "manual" })
    for (const cookie of response.headers.getSetCookie()) {
      const pair = cookie.split(";", 1)[0] ?? ""
      const eq = pair.indexOf("=")
      if (eq > 0) this.cookies.set(pair.slice(0, eq), pair.slice(eq + 1))
    }
    return response
  }

  /** Submits a page's form: its action, its hidden inputs, and `fields`. */
  post(page: string, fields: Readonly<Record<string, string>> = {}): Promise<Response> {
    const action = /action="([^"]+)"/.exec(page)?.[1]
    if (action === undefined) throw new Error("no form on the page")
    const body = new URLSearchParams()
    for (const input of page.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"\s*\/?>/g)) {
      body.set(input[1]!, input[2]!.replaceAll("&amp;", "&"))
    }
    for (const [name, value] of Object.entries(fields)) body.set(name, value)
    return this.go(action.replaceAll("&amp;", "&"), {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body
    })
  }
}

const start = async (options: AuthServerOptions): Promise<{ server: http.Server; auth: AuthServer }> => {
  const server = http.createServer()
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const provider = new Provider(issuer, {
    clients: [
      client("cli"),
      client("cli-short"),
      client("conf", {
        token_endpoint_auth_method: "client_secret_post",
        client_secret: CONFIDENTIAL_SECRET
      }),
      client("login", {
        application_type: "native",
        grant_types: ["authorization_code", "refresh_token", DEVICE_GRANT]
      })
    ],
    rotateRefreshToken: true,
    // Expired means expired (the default tolerates 15 s of clock skew).
    clockTolerance: 0,
    ttl: {
      AccessToken: (_ctx: unknown, _token: unknown, c: { clientId: string }) =>
        c.clientId === "cli-short" ? 2 : c.clientId === "login" ? 3600 : 300,
      IdToken: 300,
      RefreshToken: 86_400,
      Grant: 86_400,
      Session: 3_600,
      Interaction: 600,
      DeviceCode: options.deviceCodeTtl ?? 600
    },
    features: {
      devInteractions: { enabled: true },
      deviceFlow: { enabled: options.deviceFlow ?? true }
    },
    pkce: { methods: ["S256"], required: () => true },
    cookies: { keys: ["credproxy-test-cookie-key"] },
    scopes: ["openid", "offline_access"],
    findAccount: async (_ctx: unknown, id: string) => ({ accountId: id, claims: async () => ({ sub: id }) })
  })
  let tokenRequests = 0
  let deviceTokenRequests = 0
  let delayMs = 0
  let slowDowns = 0
  const seen: Array<string> = []
  provider.use(async (ctx, next) => {
    const token = ctx.method === "POST" && ctx.path === "/token"
    if (token) {
      tokenRequests++
      if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs))
    }
    await next()
    if (ctx.method === "POST" && ctx.path === "/device/auth" && options.deviceInterval !== undefined) {
      ctx.body = { ...(ctx.body as object), interval: options.deviceInterval }
    }
    const params = ctx.oidc?.params
    if (token && params !== undefined) {
      if (params.grant_type === DEVICE_GRANT) {
        deviceTokenRequests++
        if (slowDowns > 0 && (ctx.body as { error?: unknown }).error === "authorization_pending") {
          slowDowns--
          ctx.body = { error: "slow_down", error_description: "poll less often" }
        }
      }
      for (const name of ["code", "code_verifier", "device_code"]) {
        const value = params[name]
        if (typeof value === "string" && value !== "") seen.push(value)
      }
    }
  })
  server.on("request", provider.callback())

  const browse: AuthServer["browse"] = async (url, options = {}) => {
    const browser = new Browser(issuer)
    const { account = "alice", deny = false, stopAt = () => false } = options
    let response = await browser.go(url)
    for (let step = 0; step < 20; step++) {
      const location = response.headers.get("location")
      if (location !== null) {
        if (stopAt(location)) return location
        response = await browser.go(location)
        continue
      }
      const page = await response.text()
      // The device flow's last page: success, or the code form again after an abort.
      if (page.includes("Sign-in Success") || page.includes("request was interrupted")) return undefined
      if (page.includes('id="op.deviceInputForm"')) {
        if (options.userCode === undefined) throw new Error("the device page asks for a user code")
        response = await browser.post(page, { user_code: options.userCode })
      } else if (page.includes('id="op.deviceConfirmForm"')) {
        response = await browser.post(page, deny ? { abort: "yes" } : {})
      } else if (page.includes("Submitting Callback")) {
        response = await browser.post(page)
      } else if (page.includes('value="login"')) {
        response = await browser.post(page, { login: account, password: "any" })
      } else if (page.includes('value="consent"')) {
        if (deny) {
          const abort = /href="([^"]+\/abort)"/.exec(page)?.[1]
          if (abort === undefined) throw new Error("no cancel link on the consent page")
          response = await browser.go(abort)
        } else {
          response = await browser.post(page)
        }
      } else {
        throw new Error(`the browser stopped at HTTP ${response.status}: ${page.slice(0, 500)}`)
      }
    }
    throw new Error("the browser went round in circles")
  }

  const login = async (clientId: string, account = "alice"): Promise<TokenSet> => {
    const verifier = oauth.generateRandomCodeVerifier()
    const authorize = new URL("/auth", issuer)
    authorize.search = new URLSearchParams({
      client_id: clientId,
      response_type: "code",
      redirect_uri: REDIRECT_URI,
      scope: "openid offline_access",
      prompt: "consent",
      code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
      code_challenge_method: "S256"
    }).toString()
    const callback = await browse(authorize.href, {
      account,
      stopAt: (location) => location.startsWith(REDIRECT_URI)
    })
    const code = callback === undefined ? null : new URL(callback).searchParams.get("code")
    if (code === null) throw new Error("the login flow gave no code")
    const body = new URLSearchParams({
      grant_type: "authorization_code",
      code,
      redirect_uri: REDIRECT_URI,
      client_id: clientId,
      code_verifier: verifier
    })
    if (clientId === "conf") body.set("client_secret", CONFIDENTIAL_SECRET)
    const tokens = await fetch(`${issuer}/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body
    })
    const json = (await tokens.json()) as TokenSet
    if (!tokens.ok || typeof json.refresh_token !== "string") {
      throw new Error(`code exchange failed: HTTP ${tokens.status} ${JSON.stringify(Object.keys(json))}`)
    }
    return json
  }

  const userinfoStatus = async (accessToken: string): Promise<number> => {
    const response = await fetch(`${issuer}/me`, { headers: { authorization: `Bearer ${accessToken}` } })
    await response.body?.cancel()
    return response.status
  }

  return {
    server,
    auth: {
      issuer,
      tokenEndpoint: `${issuer}/token`,
      tokenRequests: () => tokenRequests,
      deviceTokenRequests: () => deviceTokenRequests,
      seenSecrets: () => [...seen],
      setTokenDelay: (ms) => {
        delayMs = ms
      },
      slowDownNext: (n) => {
        slowDowns = n
      },
      login,
      browse,
      userinfoStatus
    }
  }
}

/** The authorization server for the life of the scope. */
export const authServer: Effect.Effect<AuthServer, never, Scope.Scope> = authServerWith({})

/** An authorization server with `options` for the life of the scope. */
export function authServerWith(options: AuthServerOptions): Effect.Effect<AuthServer, never, Scope.Scope> {
  return Effect.map(
    Effect.acquireRelease(
      Effect.promise(() => start(options)),
      ({ server }) =>
        Effect.promise(
          () =>
            new Promise<void>((resolve) => {
              server.closeAllConnections()
              server.close(() => resolve())
            })
        )
    ),
    ({ auth }) => auth
  )
}
