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
 * and three clients: `cli` (public, access tokens for 300 s), `cli-short`
 * (public, 2 s) and `conf` (confidential, `client_secret_post`). Initial
 * tokens come from the authorization code flow with PKCE, driven over HTTP
 * through the provider's development login and consent pages.
 */

export const REDIRECT_URI = "http://127.0.0.1/callback"
export const CONFIDENTIAL_SECRET = "conf-secret-0123456789"

/** The token endpoint's JSON answer. */
export interface TokenSet {
  readonly access_token: string
  readonly refresh_token: string
  readonly expires_in: number
  readonly token_type: string
  readonly id_token?: string
  readonly scope?: string
}

export interface AuthServer {
  readonly issuer: string
  readonly tokenEndpoint: string
  /** POST requests to the token endpoint so far (every grant type). */
  readonly tokenRequests: () => number
  /** Holds every token-endpoint request this long before handling it (a slow provider). */
  readonly setTokenDelay: (ms: number) => void
  /** Logs `account` in with `clientId` (code flow, PKCE, consent to offline_access) and returns the tokens. */
  readonly login: (clientId: string, account?: string) => Promise<TokenSet>
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

/** A cookie jar just good enough for the provider's interaction pages. */
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
}

const start = async (): Promise<{ server: http.Server; auth: AuthServer }> => {
  const server = http.createServer()
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const provider = new Provider(issuer, {
    clients: [
      client("cli"),
      client("cli-short"),
      client("conf", { token_endpoint_auth_method: "client_secret_post", client_secret: CONFIDENTIAL_SECRET })
    ],
    rotateRefreshToken: true,
    // Expired means expired (the default tolerates 15 s of clock skew).
    clockTolerance: 0,
    ttl: {
      AccessToken: (_ctx: unknown, _token: unknown, c: { clientId: string }) =>
        c.clientId === "cli-short" ? 2 : 300,
      IdToken: 300,
      RefreshToken: 86_400,
      Grant: 86_400,
      Session: 3_600,
      Interaction: 600
    },
    features: { devInteractions: { enabled: true } },
    pkce: { methods: ["S256"], required: () => true },
    cookies: { keys: ["credproxy-test-cookie-key"] },
    scopes: ["openid", "offline_access"],
    findAccount: async (_ctx: unknown, id: string) => ({ accountId: id, claims: async () => ({ sub: id }) })
  })
  let tokenRequests = 0
  let delayMs = 0
  provider.use(async (ctx, next) => {
    if (ctx.method === "POST" && ctx.path === "/token") {
      tokenRequests++
      if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs))
    }
    await next()
  })
  server.on("request", provider.callback())

  const login = async (clientId: string, account = "alice"): Promise<TokenSet> => {
    const browser = new Browser(issuer)
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
    let response = await browser.go(authorize.href)
    let code: string | null = null
    for (let step = 0; step < 10 && code === null; step++) {
      const location = response.headers.get("location")
      if (location === null)
        throw new Error(`login stopped at HTTP ${response.status}: ${await response.text()}`)
      if (location.startsWith(REDIRECT_URI)) {
        code = new URL(location).searchParams.get("code")
      } else if (location.includes("/interaction/")) {
        const page = await (await browser.go(location)).text()
        const action = /action="([^"]+)"/.exec(page)?.[1]
        if (action === undefined) throw new Error("no form on the interaction page")
        const prompt = page.includes('value="login"') ? "login" : "consent"
        response = await browser.go(action, {
          method: "POST",
          headers: { "content-type": "application/x-www-form-urlencoded" },
          body: new URLSearchParams({ prompt, login: account, password: "any" })
        })
      } else {
        response = await browser.go(location)
      }
    }
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
      setTokenDelay: (ms) => {
        delayMs = ms
      },
      login,
      userinfoStatus
    }
  }
}

/** The authorization server for the life of the scope. */
export const authServer: Effect.Effect<AuthServer, never, Scope.Scope> = Effect.map(
  Effect.acquireRelease(Effect.promise(start), ({ server }) =>
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
