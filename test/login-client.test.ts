import { afterEach, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import type { LoginPrompt } from "../src/client/ProxyOAuthAdapter.js"
import { LoginFailed, ProxyOAuthAdapter, proxyClientLayer, proxyLogin, proxyRefresh } from "../src/client.js"
import { type AuthServer, authServerWith, REDIRECT_URI } from "./support/auth-server.js"
import { killAllChildren } from "./support/cli.js"
import { loginProvider, storedToken, withTokenStore } from "./support/login.js"
import { startServer, type TestServer } from "./support/server.js"
import { until } from "./support/until.js"

/**
 * `ProxyOAuthAdapter` (PROTOCOL.md §17, inner side): a program in the
 * sandbox logs in through the proxy, end to end against the real
 * authorization server, with the Promise face and the Effect face; aborting
 * cancels the login on the host.
 */

afterEach(() => killAllChildren())

const promise = <A>(f: () => Promise<A>) => Effect.promise(f)

const adapterFor = (server: TestServer) =>
  Effect.acquireRelease(
    Effect.sync(() => new ProxyOAuthAdapter({ socketPath: server.socketPath })),
    (adapter) => promise(() => adapter.dispose())
  )

/** A user who does what the prompt says, in the background (as a person would, while the program waits). */
const userFollows = (auth: AuthServer, options: { readonly deny?: boolean } = {}) => {
  let done: Promise<unknown> = Promise.resolve()
  const onPrompt = (prompt: LoginPrompt) => {
    if (prompt.flow_type === "device_code") {
      done = auth.browse(prompt.verification_uri, { userCode: prompt.user_code, ...options })
    } else if (prompt.flow_type === "browser_redirect") {
      const redirectUri = new URL(prompt.auth_url).searchParams.get("redirect_uri") ?? ""
      done = auth
        .browse(prompt.auth_url, { ...options, stopAt: (to) => to.startsWith(redirectUri) })
        .then((location) => fetch(location ?? ""))
    }
  }
  return { onPrompt, finished: () => done }
}

describe("ProxyOAuthAdapter (Promise face)", () => {
  it.scopedLive(
    "device_code: prompts, polls, answers the token without its refresh token; refresh() refreshes on the host",
    () =>
      Effect.gen(function* () {
        const auth = yield* authServerWith({ deviceInterval: 1 })
        const server = yield* startServer({ providers: [loginProvider(auth)] })
        const adapter = yield* adapterFor(server)
        const prompts: Array<LoginPrompt> = []
        const user = userFollows(auth)
        const token = yield* promise(() =>
          adapter.login("oidc", {
            onPrompt: (prompt) => {
              prompts.push(prompt)
              user.onPrompt(prompt)
            }
          })
        )
        expect(prompts).toEqual([
          expect.objectContaining({
            flow_type: "device_code",
            user_code: expect.any(String),
            expiresInSeconds: 600
          })
        ])
        expect(token).not.toHaveProperty("refresh_token")
        expect((yield* storedToken(server.dataDir, "oidc"))?.access_token).toBe(token.access_token)

        // Stale on the host: refresh() has the host refresh it with the refresh token it keeps.
        yield* withTokenStore(server.dataDir, (store) =>
          Effect.flatMap(store.getLatest({ provider: "oidc", bucket: "default" }), (stored) =>
            store.save({ provider: "oidc", bucket: "default" }, { ...stored!, expiry: 0 })
          )
        )
        const refreshed = yield* promise(() => adapter.refresh("oidc"))
        expect(refreshed.access_token).not.toBe(token.access_token)
        expect(refreshed).not.toHaveProperty("refresh_token")
        expect(yield* promise(() => auth.userinfoStatus(refreshed.access_token))).toBe(200)
      })
  )

  it.scopedLive(
    "pkce_redirect: readCode gives the pasted code; browser_redirect: the host's listener takes it",
    () =>
      Effect.gen(function* () {
        const auth = yield* authServerWith({})
        const server = yield* startServer({
          providers: [
            loginProvider(auth, { flow: "pkce_redirect", redirectUri: REDIRECT_URI }, "paste"),
            loginProvider(auth, { flow: "browser_redirect" }, "browser")
          ]
        })
        const adapter = yield* adapterFor(server)
        let authUrl = ""
        const pasted = yield* promise(() =>
          adapter.login("paste", {
            bucket: "work",
            onPrompt: (prompt) => {
              if (prompt.flow_type === "pkce_redirect") authUrl = prompt.auth_url
            },
            readCode: async () => {
              const back = new URL(
                (await auth.browse(authUrl, { stopAt: (to) => to.startsWith(REDIRECT_URI) })) ?? ""
              )
              return `${back.searchParams.get("code")}#${back.searchParams.get("state")}`
            }
          })
        )
        expect((yield* storedToken(server.dataDir, "paste", "work"))?.access_token).toBe(pasted.access_token)

        const user = userFollows(auth)
        const viaBrowser = yield* promise(() => adapter.login("browser", { onPrompt: user.onPrompt }))
        expect((yield* storedToken(server.dataDir, "browser"))?.access_token).toBe(viaBrowser.access_token)
      })
  )

  it.scopedLive(
    "abort cancels the login on the host at once; a refusal and a missing readCode reject with LoginFailed",
    () =>
      Effect.gen(function* () {
        const auth = yield* authServerWith({ deviceInterval: 1 })
        const server = yield* startServer({
          providers: [
            loginProvider(auth),
            loginProvider(auth, { flow: "pkce_redirect", redirectUri: REDIRECT_URI }, "paste")
          ]
        })
        const adapter = yield* adapterFor(server)
        const abort = new AbortController()
        const aborted = adapter.login("oidc", { onPrompt: () => {}, signal: abort.signal })
        yield* promise(() =>
          until(() => server.status().loginSessions === 1, { what: "the session on the host" })
        )
        yield* promise(() => until(() => auth.deviceTokenRequests() >= 1, { what: "the host's first poll" }))
        abort.abort()
        const reason = yield* promise(() =>
          aborted.then(
            () => "resolved",
            (error: Error) => error.name
          )
        )
        expect(reason).toBe("AbortError")
        expect(server.status().loginSessions).toBe(0)

        const user = userFollows(auth, { deny: true })
        const refused = yield* promise(() =>
          adapter.login("oidc", { onPrompt: user.onPrompt }).then(
            () => undefined,
            (error: unknown) => error
          )
        )
        expect(refused).toBeInstanceOf(LoginFailed)
        expect(refused).toMatchObject({ code: "ACCESS_DENIED" })

        const noReader = yield* promise(() =>
          adapter.login("paste", { onPrompt: () => {} }).then(
            () => undefined,
            (error: unknown) => error
          )
        )
        expect(noReader).toMatchObject({ _tag: "LoginFailed", code: "EXCHANGE_FAILED" })
        // Both ended on this side too, so the adapter cancelled them: the host holds nothing.
        expect(server.status().loginSessions).toBe(0)
      })
  )
})

describe("login and refresh (Effect face)", () => {
  it.scopedLive("proxyLogin with proxyClientLayer", () =>
    Effect.gen(function* () {
      const auth = yield* authServerWith({ deviceInterval: 1 })
      const server = yield* startServer({ providers: [loginProvider(auth)] })
      const user = userFollows(auth)
      const token = yield* proxyLogin("oidc", {
        bucket: "effect",
        onPrompt: (prompt) => Effect.sync(() => user.onPrompt(prompt))
      }).pipe(Effect.provide(proxyClientLayer({ socketPath: server.socketPath })))
      expect((yield* storedToken(server.dataDir, "oidc", "effect"))?.access_token).toBe(token.access_token)
      const again = yield* proxyRefresh("oidc", "effect").pipe(
        Effect.provide(proxyClientLayer({ socketPath: server.socketPath }))
      )
      // Still valid: answered as it is, without a call to the provider.
      expect(again.access_token).toBe(token.access_token)
    })
  )
})
