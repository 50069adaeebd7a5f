import { afterEach, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { type AuthServer, authServer, authServerWith, REDIRECT_URI } from "./support/auth-server.js"
import { killAllChildren } from "./support/cli.js"
import type { FrameClient, Json } from "./support/frame-client.js"
import { call, connect, loginProvider, refreshesOnHost, storedToken } from "./support/login.js"
import { portOpen } from "./support/loopback.js"
import { startServer, type TestServer } from "./support/server.js"
import { poll } from "./support/until.js"

/**
 * The three login flows of PROTOCOL.md §17 end to end through the socket,
 * against a real authorization server on loopback (`oidc-provider`, its
 * pages driven over HTTP as a user's browser would), in real time. After
 * each: `get_token` answers the new access token, the provider accepts it,
 * and `credproxy token refresh` works with the refresh token the login
 * stored (which never crossed the socket).
 */

afterEach(() => killAllChildren())

const promise = <A>(f: () => Promise<A>) => Effect.promise(f)

/** Asks `oauth_poll` (at its own pace, real time) until the session is no longer pending. */
const pollUntilDone = (client: FrameClient, sessionId: string) =>
  promise(async () => {
    const { value } = await poll(
      () => client.request("oauth_poll", { session_id: sessionId }),
      (reply) => !(reply.ok === true && reply.data.status === "pending"),
      { limitMs: 15_000, intervalMs: 50, what: "the login to finish" }
    )
    return value
  })

/** What a login must leave behind: the token served, live at the provider, refreshable on the host. */
const loggedIn = (server: TestServer, client: FrameClient, auth: AuthServer, token: Json) =>
  Effect.gen(function* () {
    expect(token).not.toHaveProperty("refresh_token")
    expect(token.token_type).toBe("Bearer")
    const served = yield* call(client, "get_token", { provider: "oidc" })
    expect(served).toMatchObject({ ok: true, data: { access_token: token.access_token } })
    expect(yield* promise(() => auth.userinfoStatus(token.access_token))).toBe(200)
    const stored = yield* storedToken(server.dataDir, "oidc")
    expect(stored?.access_token).toBe(token.access_token)
    yield* refreshesOnHost(server.dataDir, auth, loginProvider(auth))
  })

describe("login through the socket (real OAuth 2.0 server on loopback)", () => {
  it.scopedLive("device_code: the user enters the code; the host polls; oauth_poll reports it once", () =>
    Effect.gen(function* () {
      const auth = yield* authServerWith({ deviceInterval: 1 })
      const server = yield* startServer({ providers: [loginProvider(auth)] })
      const client = yield* connect(server)
      const started = yield* call(client, "oauth_initiate", { provider: "oidc" })
      expect(started).toMatchObject({
        ok: true,
        data: {
          flow_type: "device_code",
          session_id: expect.stringMatching(/^[0-9a-f]{32}$/),
          verification_uri: `${auth.issuer}/device`,
          verification_uri_complete: expect.stringContaining("user_code="),
          user_code: expect.stringMatching(/^[A-Z]{4}-[A-Z]{4}$/),
          pollIntervalMs: 1000,
          expiresInSeconds: 600
        }
      })
      const { session_id, verification_uri, user_code } = started.data
      expect(yield* call(client, "oauth_poll", { session_id })).toMatchObject({
        ok: true,
        data: { status: "pending", pollIntervalMs: 1000 }
      })
      expect(yield* promise(() => auth.browse(verification_uri, { userCode: user_code }))).toBeUndefined()
      const done = yield* pollUntilDone(client, session_id)
      expect(done).toMatchObject({ ok: true, data: { status: "complete" } })
      expect(yield* call(client, "oauth_poll", { session_id })).toMatchObject({
        ok: false,
        code: "SESSION_ALREADY_USED"
      })
      expect(server.status().loginSessions).toBe(1)
      yield* loggedIn(server, client, auth, done.data.token)
    })
  )

  it.scopedLive("device_code: a user who refuses ends the login with ACCESS_DENIED; nothing is stored", () =>
    Effect.gen(function* () {
      const auth = yield* authServerWith({ deviceInterval: 1 })
      const server = yield* startServer({ providers: [loginProvider(auth)] })
      const client = yield* connect(server)
      const started = yield* call(client, "oauth_initiate", { provider: "oidc", bucket: "work" })
      yield* promise(() => auth.browse(started.data.verification_uri_complete, { deny: true }))
      expect(yield* pollUntilDone(client, started.data.session_id)).toMatchObject({
        ok: true,
        data: { status: "error", code: "ACCESS_DENIED", error: "the login was refused at the provider" }
      })
      expect(yield* storedToken(server.dataDir, "oidc", "work")).toBeUndefined()
    })
  )

  it.scopedLive("pkce_redirect: the pasted CODE#STATE is exchanged once; a plain code works too", () =>
    Effect.gen(function* () {
      const auth = yield* authServer
      const provider = loginProvider(auth, { flow: "pkce_redirect", redirectUri: REDIRECT_URI })
      const server = yield* startServer({ providers: [provider] })
      const client = yield* connect(server)

      const started = yield* call(client, "oauth_initiate", { provider: "oidc" })
      expect(started).toMatchObject({
        ok: true,
        data: { flow_type: "pkce_redirect", auth_url: expect.stringContaining(`${auth.issuer}/auth?`) }
      })
      const url = new URL(started.data.auth_url)
      expect(url.searchParams.get("code_challenge_method")).toBe("S256")
      expect(url.searchParams.get("redirect_uri")).toBe(REDIRECT_URI)
      expect(url.searchParams.get("prompt")).toBe("consent")
      const redirect = yield* promise(() =>
        auth.browse(started.data.auth_url, { stopAt: (location) => location.startsWith(REDIRECT_URI) })
      )
      const back = new URL(redirect ?? "")
      const pasted = `${back.searchParams.get("code")}#${back.searchParams.get("state")}`
      const session_id = started.data.session_id
      expect(yield* call(client, "oauth_poll", { session_id })).toMatchObject({
        ok: false,
        code: "INVALID_REQUEST",
        error: "this operation does not apply to the login session's flow"
      })
      const exchanged = yield* call(client, "oauth_exchange", { session_id, code: `  ${pasted}\n` })
      expect(exchanged).toMatchObject({ ok: true, data: { token: { token_type: "Bearer" } } })
      expect(yield* call(client, "oauth_exchange", { session_id, code: pasted })).toMatchObject({
        ok: false,
        code: "SESSION_ALREADY_USED"
      })
      yield* loggedIn(server, client, auth, exchanged.data.token)

      // A code page that shows the code alone: no state to compare, PKCE still binds it to the session.
      const again = yield* call(client, "oauth_initiate", { provider: "oidc", bucket: "second" })
      const second = yield* promise(() =>
        auth.browse(again.data.auth_url, { stopAt: (location) => location.startsWith(REDIRECT_URI) })
      )
      const code = new URL(second ?? "").searchParams.get("code")
      const plain = yield* call(client, "oauth_exchange", { session_id: again.data.session_id, code })
      expect(plain).toMatchObject({ ok: true, data: { token: { access_token: expect.any(String) } } })
      expect((yield* storedToken(server.dataDir, "oidc", "second"))?.refresh_token).toEqual(
        expect.any(String)
      )
    })
  )

  it.scopedLive("browser_redirect: the loopback listener takes the redirect, then closes", () =>
    Effect.gen(function* () {
      const auth = yield* authServer
      const server = yield* startServer({ providers: [loginProvider(auth, { flow: "browser_redirect" })] })
      const client = yield* connect(server)
      const started = yield* call(client, "oauth_initiate", { provider: "oidc" })
      expect(started).toMatchObject({
        ok: true,
        data: { flow_type: "browser_redirect", pollIntervalMs: 1000, expiresInSeconds: 600 }
      })
      const redirectUri = new URL(started.data.auth_url).searchParams.get("redirect_uri") ?? ""
      expect(redirectUri).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/callback$/)
      const port = Number(new URL(redirectUri).port)

      // A request to the listener that is not this login's redirect changes nothing.
      const stray = yield* promise(() => fetch(`${redirectUri}?code=x&state=not-the-state`))
      expect(stray.status).toBe(400)
      expect(yield* promise(() => stray.text())).not.toContain("not-the-state")
      expect(yield* promise(() => fetch(`http://127.0.0.1:${port}/other`).then((r) => r.status))).toBe(404)

      const location = yield* promise(() =>
        auth.browse(started.data.auth_url, { stopAt: (at) => at.startsWith(redirectUri) })
      )
      // The browser follows the redirect to the host's listener.
      const landing = yield* promise(() => fetch(location ?? ""))
      expect(landing.status).toBe(200)
      expect(yield* promise(() => landing.text())).toContain("Logged in")
      const done = yield* pollUntilDone(client, started.data.session_id)
      expect(done).toMatchObject({ ok: true, data: { status: "complete" } })
      yield* promise(() =>
        poll(
          () => portOpen(port),
          (open) => !open,
          { what: "the listener to close", limitMs: 5_000 }
        )
      )
      yield* loggedIn(server, client, auth, done.data.token)
    })
  )

  it.scopedLive("browser_redirect: a refusal at the provider comes back as ACCESS_DENIED", () =>
    Effect.gen(function* () {
      const auth = yield* authServer
      const server = yield* startServer({ providers: [loginProvider(auth, { flow: "browser_redirect" })] })
      const client = yield* connect(server)
      const started = yield* call(client, "oauth_initiate", { provider: "oidc" })
      const redirectUri = new URL(started.data.auth_url).searchParams.get("redirect_uri") ?? ""
      const location = yield* promise(() =>
        auth.browse(started.data.auth_url, { deny: true, stopAt: (at) => at.startsWith(redirectUri) })
      )
      expect(new URL(location ?? "").searchParams.get("error")).toBe("access_denied")
      expect((yield* promise(() => fetch(location ?? ""))).status).toBe(200)
      expect(yield* pollUntilDone(client, started.data.session_id)).toMatchObject({
        ok: true,
        data: { status: "error", code: "ACCESS_DENIED" }
      })
      expect(yield* storedToken(server.dataDir, "oidc")).toBeUndefined()
    })
  )
})
