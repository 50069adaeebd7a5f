import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import * as TestClock from "effect/TestClock"
import { type AuthServer, authServerWith, REDIRECT_URI } from "./support/auth-server.js"
import type { Json } from "./support/frame-client.js"
import { call, connect, loginProvider } from "./support/login.js"
import { portOpen } from "./support/loopback.js"
import { startServer } from "./support/server.js"
import { awaitTimer } from "./support/test-clock.js"
import { until } from "./support/until.js"

/**
 * The session rules of PROTOCOL.md §17 on the TestClock, against the real
 * authorization server (its device polls counted on its side): lifetime and
 * collection, single use, identity binding, the per-identity cap, cancel,
 * slow_down, and the server's stop.
 */

const promise = <A>(f: () => Promise<A>) => Effect.promise(f)
const MINUTE = 60_000

const serverWith = (auth: AuthServer, flow: "device_code" | "pkce_redirect" | "browser_redirect") =>
  startServer({
    providers: [
      loginProvider(auth, { flow, ...(flow === "pkce_redirect" ? { redirectUri: REDIRECT_URI } : {}) })
    ]
  })

/** Timers due exactly `ms` from now on the TestClock. */
const timersIn = (ms: number) =>
  Effect.flatMap(TestClock.currentTimeMillis, (now) =>
    Effect.map(TestClock.sleeps(), (sleeps) => Chunk.filter(sleeps, (at) => at === now + ms).length)
  )

const listenerPort = (started: Json) =>
  Number(new URL(new URL(started.data.auth_url).searchParams.get("redirect_uri") ?? "").port)

describe("login sessions (§17) on the TestClock", () => {
  it.scoped("a session expires after 10 min (SESSION_EXPIRED), and is gone after the next collection", () =>
    Effect.gen(function* () {
      const auth = yield* authServerWith({})
      const server = yield* serverWith(auth, "browser_redirect")
      const client = yield* connect(server)
      const first = yield* call(client, "oauth_initiate", { provider: "oidc" })
      yield* awaitTimer(MINUTE)
      yield* TestClock.adjust(30_000)
      const second = yield* call(client, "oauth_initiate", { provider: "oidc", bucket: "b" })
      const id = second.data.session_id
      yield* awaitTimer(10 * MINUTE)
      // Collections at 1, 2, ... 10 min after the first session; the second expires at 10.5 min.
      yield* TestClock.adjust(10 * MINUTE - 1)
      expect(yield* call(client, "oauth_poll", { session_id: id })).toMatchObject({
        ok: true,
        data: { status: "pending" }
      })
      expect(yield* call(client, "oauth_poll", { session_id: first.data.session_id })).toMatchObject({
        code: "SESSION_NOT_FOUND"
      })
      yield* TestClock.adjust(1)
      const expired = yield* call(client, "oauth_poll", { session_id: id })
      expect(expired).toMatchObject({
        ok: false,
        code: "SESSION_EXPIRED",
        error: expect.stringContaining("expired")
      })
      // Its listener ended with it.
      yield* promise(() =>
        until(async () => !(await portOpen(listenerPort(second))), { what: "the port to close" })
      )
      expect(yield* promise(() => portOpen(listenerPort(first)))).toBe(false)
      yield* TestClock.adjust(30_000 - 1)
      expect(yield* call(client, "oauth_poll", { session_id: id })).toMatchObject({ code: "SESSION_EXPIRED" })
      expect(server.status().loginSessions).toBe(1)
      yield* TestClock.adjust(1)
      expect(yield* call(client, "oauth_poll", { session_id: id })).toMatchObject({
        code: "SESSION_NOT_FOUND"
      })
      expect(server.status().loginSessions).toBe(0)
      // With nothing left to collect, no timer is left either.
      expect(yield* TestClock.sleeps()).toHaveLength(0)
    })
  )

  it.scoped("a device code that lives less than 10 min sets the session's lifetime", () =>
    Effect.gen(function* () {
      const auth = yield* authServerWith({ deviceCodeTtl: 120 })
      const server = yield* serverWith(auth, "device_code")
      const client = yield* connect(server)
      // A first session starts the collections (every minute from now); the one under test starts 30 s later.
      yield* call(client, "oauth_initiate", { provider: "oidc", bucket: "first" })
      yield* TestClock.adjust(30_000)
      const started = yield* call(client, "oauth_initiate", { provider: "oidc" })
      expect(started.data).toMatchObject({ expiresInSeconds: 120, pollIntervalMs: 5000 })
      const session_id = started.data.session_id
      yield* TestClock.adjust(120_000 - 1)
      expect(yield* call(client, "oauth_poll", { session_id })).toMatchObject({ data: { status: "pending" } })
      yield* TestClock.adjust(1)
      expect(yield* call(client, "oauth_poll", { session_id })).toMatchObject({ code: "SESSION_EXPIRED" })
    })
  )

  it.scoped("single use: a pasted code is tried once, whatever it ends in", () =>
    Effect.gen(function* () {
      const auth = yield* authServerWith({})
      const server = yield* serverWith(auth, "pkce_redirect")
      const client = yield* connect(server)
      const started = yield* call(client, "oauth_initiate", { provider: "oidc" })
      const session_id = started.data.session_id
      const before = auth.tokenRequests()
      expect(yield* call(client, "oauth_exchange", { session_id, code: "not-a-real-code" })).toMatchObject({
        ok: false,
        code: "EXCHANGE_FAILED",
        error: "the provider refused the code (invalid_grant)"
      })
      expect(auth.tokenRequests() - before).toBe(1)
      expect(yield* call(client, "oauth_exchange", { session_id, code: "another-code" })).toMatchObject({
        ok: false,
        code: "SESSION_ALREADY_USED"
      })
      expect(auth.tokenRequests() - before).toBe(1)
    })
  )

  it.scoped(
    "a session belongs to its identity: others are told it does not exist; a new connection of the same works",
    () =>
      Effect.gen(function* () {
        const auth = yield* authServerWith({})
        const server = yield* serverWith(auth, "device_code")
        const owner = yield* connect(server, "token-a")
        const started = yield* call(owner, "oauth_initiate", { provider: "oidc" })
        const session_id = started.data.session_id
        const pending = { ok: true, data: { status: "pending" } }
        for (const other of [yield* connect(server, "token-b"), yield* connect(server)]) {
          expect(yield* call(other, "oauth_poll", { session_id })).toMatchObject({
            code: "SESSION_NOT_FOUND"
          })
          expect(yield* call(other, "oauth_exchange", { session_id, code: "c" })).toMatchObject({
            code: "SESSION_NOT_FOUND"
          })
          // Cancelling another identity's session answers as for any unknown session, and does nothing.
          expect(yield* call(other, "oauth_cancel", { session_id })).toMatchObject({ ok: true, data: {} })
          expect(yield* call(owner, "oauth_poll", { session_id })).toMatchObject(pending)
        }
        owner.close()
        const again = yield* connect(server, "token-a")
        expect(yield* call(again, "oauth_poll", { session_id })).toMatchObject(pending)
      })
  )

  it.scoped("at most 8 live sessions per identity: the 9th is RATE_LIMITED until the oldest ends", () =>
    Effect.gen(function* () {
      const auth = yield* authServerWith({})
      const server = yield* serverWith(auth, "pkce_redirect")
      const client = yield* connect(server)
      const ids: Array<string> = []
      for (let i = 0; i < 8; i++) {
        const started = yield* call(client, "oauth_initiate", { provider: "oidc", bucket: `b${i}` })
        expect(started.ok).toBe(true)
        ids.push(started.data.session_id)
        yield* TestClock.adjust(1_000)
      }
      expect(yield* call(client, "oauth_initiate", { provider: "oidc" })).toMatchObject({
        ok: false,
        code: "RATE_LIMITED",
        error: "too many login sessions in progress",
        retryAfter: 592
      })
      // Another identity has its own allowance.
      const other = yield* connect(server, "someone-else")
      expect(yield* call(other, "oauth_initiate", { provider: "oidc" })).toMatchObject({ ok: true })
      // A session that is used up (or cancelled) is no longer live.
      yield* call(client, "oauth_exchange", { session_id: ids[0], code: "spent" })
      expect(yield* call(client, "oauth_initiate", { provider: "oidc" })).toMatchObject({ ok: true })
      expect(yield* call(client, "oauth_initiate", { provider: "oidc" })).toMatchObject({
        code: "RATE_LIMITED"
      })
      yield* call(client, "oauth_cancel", { session_id: ids[1] })
      expect(yield* call(client, "oauth_initiate", { provider: "oidc" })).toMatchObject({ ok: true })
    })
  )

  it.scoped("device polling: every interval on the Clock; slow_down adds 5 s; cancel stops it at once", () =>
    Effect.gen(function* () {
      const auth = yield* authServerWith({})
      const server = yield* serverWith(auth, "device_code")
      const client = yield* connect(server)
      const started = yield* call(client, "oauth_initiate", { provider: "oidc" })
      const session_id = started.data.session_id
      const polls = (n: number) =>
        promise(() => until(() => auth.deviceTokenRequests() === n, { what: `${n} device polls` }))

      yield* awaitTimer(5_000)
      expect(auth.deviceTokenRequests()).toBe(0)
      auth.slowDownNext(1)
      yield* TestClock.adjust(5_000)
      yield* polls(1)
      // slow_down: the next poll is 10 s away, and oauth_poll tells the client.
      yield* awaitTimer(10_000)
      expect(yield* timersIn(5_000)).toBe(0)
      expect(yield* call(client, "oauth_poll", { session_id })).toMatchObject({
        data: { status: "pending", pollIntervalMs: 10_000 }
      })
      yield* TestClock.adjust(10_000)
      yield* polls(2)
      yield* awaitTimer(10_000)

      // A second login, polled at the same moments, shows what the cancelled one would have done.
      yield* TestClock.adjust(5_000)
      const control = yield* call(client, "oauth_initiate", { provider: "oidc", bucket: "control" })
      yield* awaitTimer(5_000)
      expect(yield* call(client, "oauth_cancel", { session_id })).toMatchObject({ ok: true, data: {} })
      expect(yield* call(client, "oauth_poll", { session_id })).toMatchObject({ code: "SESSION_NOT_FOUND" })
      yield* TestClock.adjust(5_000)
      yield* polls(3)
      yield* awaitTimer(5_000)
      expect(auth.deviceTokenRequests()).toBe(3)
      // The device codes polled: twice the cancelled login's, then the control's.
      const [first, second, third] = auth.seenSecrets()
      expect(second).toBe(first)
      expect(third).not.toBe(first)
      expect(yield* call(client, "oauth_poll", { session_id: control.data.session_id })).toMatchObject({
        data: { status: "pending" }
      })
      expect(server.status().loginSessions).toBe(1)
    })
  )

  it.scoped("the server's stop ends every session: no more polls, the loopback port is free", () =>
    Effect.gen(function* () {
      const auth = yield* authServerWith({})
      const scope = yield* Scope.make()
      const { device, browser } = yield* Effect.gen(function* () {
        const devices = yield* serverWith(auth, "device_code")
        const browsers = yield* startServer({
          providers: [loginProvider(auth, { flow: "browser_redirect" })]
        })
        const one = yield* connect(devices)
        const two = yield* connect(browsers)
        return {
          device: yield* call(one, "oauth_initiate", { provider: "oidc" }),
          browser: yield* call(two, "oauth_initiate", { provider: "oidc" })
        }
      }).pipe(Scope.extend(scope))
      expect(device.ok && browser.ok).toBe(true)
      const port = listenerPort(browser)
      expect(yield* promise(() => portOpen(port))).toBe(true)
      yield* awaitTimer(5_000)

      yield* Scope.close(scope, Exit.void)
      expect(yield* promise(() => portOpen(port))).toBe(false)
      // The fibers are gone with the scope: a clock that passes every poll time wakes nothing.
      yield* TestClock.adjust(10 * MINUTE)
      expect(auth.deviceTokenRequests()).toBe(0)
    })
  )
})
