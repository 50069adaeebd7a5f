import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as TestClock from "effect/TestClock"
import type { OAuthProvider } from "../../src/services/OAuthProviders.js"
import { authServerWith, REDIRECT_URI } from "../support/auth-server.js"
import { call, connect, loginProvider, storedToken } from "../support/login.js"
import { closedPort, silentServer } from "../support/loopback.js"
import { startServer } from "../support/server.js"
import { awaitTimer } from "../support/test-clock.js"
import { poll, until } from "../support/until.js"

/**
 * Logins under bad input and bad providers (PROTOCOL.md §17): unknown and
 * malformed session ids and codes, a wrong `#STATE`, a provider that refuses
 * connections or never answers, stray requests to the loopback listener,
 * and more sessions than the server holds. Each is a clear answer, leaves no
 * live session behind, and never hangs (provider deadlines on the TestClock).
 */

const promise = <A>(f: () => Promise<A>) => Effect.promise(f)

/** A provider whose every endpoint is `base` (nothing is discovered). */
const at = (name: string, base: string, login: OAuthProvider["login"] = {}): OAuthProvider => ({
  name,
  clientId: "login",
  scopes: [],
  tokenEndpoint: `${base}/token`,
  authorizationEndpoint: `${base}/auth`,
  deviceAuthorizationEndpoint: `${base}/device/auth`,
  login
})

describe("bad input to the oauth_* operations", () => {
  it.scoped("unknown and malformed session ids: SESSION_NOT_FOUND or INVALID_REQUEST, never a crash", () =>
    Effect.gen(function* () {
      const auth = yield* authServerWith({})
      const server = yield* startServer({ providers: [loginProvider(auth)] })
      const client = yield* connect(server)
      for (const session_id of ["0".repeat(32), "f".repeat(128), "../../etc/passwd", "__proto__", "é"]) {
        for (const op of ["oauth_poll", "oauth_exchange"]) {
          expect(yield* call(client, op, { session_id, code: "c" }), `${op} ${session_id}`).toMatchObject({
            ok: false,
            code: "SESSION_NOT_FOUND"
          })
        }
        expect(yield* call(client, "oauth_cancel", { session_id })).toMatchObject({ ok: true })
      }
      for (const session_id of ["", "x".repeat(129), 42, null, { id: "x" }]) {
        expect(yield* call(client, "oauth_poll", { session_id })).toMatchObject({
          ok: false,
          code: "INVALID_REQUEST",
          error: expect.stringContaining("payload.session_id")
        })
      }
      expect(yield* call(client, "oauth_initiate", { provider: "../oidc" })).toMatchObject({
        code: "INVALID_REQUEST"
      })
      expect(server.status().loginSessions).toBe(0)
    })
  )

  it.scoped("a login outside the access policy is UNAUTHORIZED and starts nothing", () =>
    Effect.gen(function* () {
      const auth = yield* authServerWith({})
      const server = yield* startServer({ providers: [loginProvider(auth)], allow: ["oidc:work"] })
      const client = yield* connect(server)
      const requests = auth.tokenRequests()
      expect(yield* call(client, "oauth_initiate", { provider: "oidc" })).toMatchObject({
        ok: false,
        code: "UNAUTHORIZED",
        error: "not allowed by the access policy"
      })
      expect(server.status().loginSessions).toBe(0)
      expect(auth.tokenRequests()).toBe(requests)
      expect(yield* call(client, "oauth_initiate", { provider: "oidc", bucket: "work" })).toMatchObject({
        ok: true
      })
    })
  )

  it.scoped(
    "malformed codes are refused before the session is touched; a wrong #STATE spends it without calling the provider",
    () =>
      Effect.gen(function* () {
        const auth = yield* authServerWith({})
        const provider = loginProvider(auth, { flow: "pkce_redirect", redirectUri: REDIRECT_URI })
        const server = yield* startServer({ providers: [provider] })
        const client = yield* connect(server)
        const started = yield* call(client, "oauth_initiate", { provider: "oidc" })
        const session_id = started.data.session_id
        const requests = auth.tokenRequests()
        for (const code of ["", "   ", "x".repeat(4097), 7]) {
          expect(yield* call(client, "oauth_exchange", { session_id, code })).toMatchObject({
            code: "INVALID_REQUEST",
            error: expect.stringContaining("payload.code")
          })
        }
        for (const code of ["two words", "#only-a-state", "tab\there", "code#sta te"]) {
          expect(yield* call(client, "oauth_exchange", { session_id, code })).toMatchObject({
            code: "INVALID_REQUEST",
            error: "payload.code must be an authorization code, optionally followed by #STATE"
          })
        }
        expect(auth.tokenRequests()).toBe(requests)

        // The session is still good: a real code with the wrong state.
        const back = new URL(
          (yield* promise(() =>
            auth.browse(started.data.auth_url, { stopAt: (location) => location.startsWith(REDIRECT_URI) })
          )) ?? ""
        )
        const code = back.searchParams.get("code")
        expect(
          yield* call(client, "oauth_exchange", { session_id, code: `${code}#not-the-state` })
        ).toMatchObject({
          ok: false,
          code: "EXCHANGE_FAILED",
          error: "the code's state does not match the login session"
        })
        expect(auth.tokenRequests()).toBe(requests)
        expect(
          yield* call(client, "oauth_exchange", {
            session_id,
            code: `${code}#${back.searchParams.get("state")}`
          })
        ).toMatchObject({
          code: "SESSION_ALREADY_USED"
        })
        expect(yield* storedToken(server.dataDir, "oidc")).toBeUndefined()
      })
  )
})

describe("providers that are down or slow", () => {
  it.scoped("refused connections: INTERNAL_ERROR provider unreachable at once, no session left", () =>
    Effect.gen(function* () {
      const port = yield* closedPort
      const server = yield* startServer({
        providers: [
          { name: "gone", issuer: `http://127.0.0.1:${port}`, clientId: "c", scopes: [] },
          at("gone-device", `http://127.0.0.1:${port}`)
        ]
      })
      const client = yield* connect(server)
      for (const provider of ["gone", "gone-device"]) {
        expect(yield* call(client, "oauth_initiate", { provider })).toMatchObject({
          ok: false,
          code: "INTERNAL_ERROR",
          error: "provider unreachable"
        })
      }
      expect(server.status().loginSessions).toBe(0)
    })
  )

  it.scoped("no answer: the 15 s deadline (on the Clock) ends the start or the exchange; nothing hangs", () =>
    Effect.gen(function* () {
      const silent = yield* silentServer
      const base = `http://127.0.0.1:${silent.port}`
      const server = yield* startServer({
        providers: [
          { name: "mute", issuer: base, clientId: "c", scopes: [] },
          at("mute-token", base, { flow: "pkce_redirect", redirectUri: REDIRECT_URI })
        ]
      })
      const client = yield* connect(server)
      const starting = yield* Effect.fork(call(client, "oauth_initiate", { provider: "mute" }))
      yield* awaitTimer(15_000)
      yield* TestClock.adjust(15_000)
      expect(yield* Fiber.join(starting)).toMatchObject({
        code: "INTERNAL_ERROR",
        error: "provider unreachable"
      })
      expect(server.status().loginSessions).toBe(0)

      // A pasted-code login needs no call to start; its exchange meets the silent token endpoint.
      const started = yield* call(client, "oauth_initiate", { provider: "mute-token" })
      const session_id = started.data.session_id
      const exchanging = yield* Effect.fork(call(client, "oauth_exchange", { session_id, code: "some-code" }))
      yield* promise(() => until(() => silent.accepted() >= 2, { what: "the token request" }))
      yield* awaitTimer(15_000)
      yield* TestClock.adjust(15_000)
      expect(yield* Fiber.join(exchanging)).toMatchObject({
        ok: false,
        code: "EXCHANGE_FAILED",
        error: "provider unreachable"
      })
      expect(yield* call(client, "oauth_exchange", { session_id, code: "again" })).toMatchObject({
        code: "SESSION_ALREADY_USED"
      })
    })
  )

  it.scoped(
    "a token endpoint that goes away while a device login polls: three tries, then EXCHANGE_FAILED",
    () =>
      Effect.gen(function* () {
        const auth = yield* authServerWith({})
        const port = yield* closedPort
        // The device authorization is real; the polls go to a port where nothing listens.
        const provider: OAuthProvider = {
          ...at("half", `http://127.0.0.1:${port}`),
          deviceAuthorizationEndpoint: `${auth.issuer}/device/auth`
        }
        const server = yield* startServer({ providers: [provider] })
        const client = yield* connect(server)
        const started = yield* call(client, "oauth_initiate", { provider: "half" })
        const session_id = started.data.session_id
        for (let attempt = 1; attempt <= 3; attempt++) {
          yield* awaitTimer(5_000)
          expect(yield* call(client, "oauth_poll", { session_id })).toMatchObject({
            data: { status: "pending" }
          })
          yield* TestClock.adjust(5_000)
        }
        const { value } = yield* promise(() =>
          poll(
            () => client.request("oauth_poll", { session_id }),
            (reply) => reply.data?.status !== "pending",
            { what: "the login to give up" }
          )
        )
        expect(value).toMatchObject({
          ok: true,
          data: { status: "error", code: "EXCHANGE_FAILED", error: "provider unreachable" }
        })
      })
  )
})

describe("the loopback listener and the session table under pressure", () => {
  it.scoped(
    "stray and flooding requests to the listener change nothing; the real redirect still completes",
    () =>
      Effect.gen(function* () {
        const auth = yield* authServerWith({})
        const server = yield* startServer({ providers: [loginProvider(auth, { flow: "browser_redirect" })] })
        const client = yield* connect(server)
        const started = yield* call(client, "oauth_initiate", { provider: "oidc" })
        const redirectUri = new URL(started.data.auth_url).searchParams.get("redirect_uri") ?? ""
        const statuses = yield* promise(() =>
          Promise.all(
            Array.from({ length: 60 }, (_, i) =>
              fetch(`${redirectUri}?code=forged-${i}&state=forged-${i}`).then((response) => response.status)
            )
          )
        )
        expect(statuses.every((status) => status === 400 || status === 503)).toBe(true)
        const huge = yield* promise(() =>
          fetch(redirectUri, { headers: { "x-junk": "j".repeat(20_000) } }).then(
            (response) => response.status
          )
        )
        expect(huge).toBe(431)
        const post = yield* promise(() =>
          fetch(redirectUri, { method: "POST", body: "x" }).then((r) => r.status)
        )
        expect(post).toBe(404)
        expect(yield* call(client, "oauth_poll", { session_id: started.data.session_id })).toMatchObject({
          data: { status: "pending" }
        })
        const location = yield* promise(() =>
          auth.browse(started.data.auth_url, { stopAt: (to) => to.startsWith(redirectUri) })
        )
        expect((yield* promise(() => fetch(location ?? ""))).status).toBe(200)
        yield* promise(() =>
          until(
            async () => (await client.request("oauth_poll", { session_id: started.data.session_id })).ok,
            {
              what: "the login to complete"
            }
          )
        )
        expect((yield* storedToken(server.dataDir, "oidc"))?.refresh_token).toEqual(expect.any(String))
      })
  )

  it.scoped("the server holds a bounded number of sessions across identities; finished ones make room", () =>
    Effect.gen(function* () {
      const auth = yield* authServerWith({})
      const server = yield* startServer({
        providers: [loginProvider(auth, { flow: "pkce_redirect", redirectUri: REDIRECT_URI })],
        config: { maxLoginSessions: 4 }
      })
      const ids: Array<string> = []
      for (const identity of ["a", "b", "c", "d"]) {
        const client = yield* connect(server, identity)
        ids.push((yield* call(client, "oauth_initiate", { provider: "oidc" })).data.session_id)
      }
      const late = yield* connect(server, "e")
      expect(yield* call(late, "oauth_initiate", { provider: "oidc" })).toMatchObject({
        ok: false,
        code: "RATE_LIMITED",
        retryAfter: 600
      })
      // "a" spends its session (a failed exchange): it is no longer live and gives its place up.
      const a = yield* connect(server, "a")
      yield* call(a, "oauth_exchange", { session_id: ids[0], code: "bogus" })
      expect(yield* call(late, "oauth_initiate", { provider: "oidc" })).toMatchObject({ ok: true })
      expect(server.status().loginSessions).toBe(4)
      expect(yield* call(a, "oauth_exchange", { session_id: ids[0], code: "bogus" })).toMatchObject({
        code: "SESSION_NOT_FOUND"
      })
    })
  )
})
