import * as fs from "node:fs"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as TestClock from "effect/TestClock"
import * as FileTokenStore from "../src/layers/FileTokenStore.js"
import * as ProvidersFile from "../src/layers/ProvidersFile.js"
import * as RefreshCoordinatorLive from "../src/layers/RefreshCoordinatorLive.js"
import type { OAuthProvider } from "../src/services/OAuthProviders.js"
import { renewalBackoffMs, renewalTime } from "../src/services/TokenRenewal.js"
import { FrameClient, type Json } from "./support/frame-client.js"
import { answer, fail, scriptedRefresher } from "./support/refresher.js"
import { startServer, type TestServer, tempDir } from "./support/server.js"
import { awaitTimer } from "./support/test-clock.js"
import { poll, until } from "./support/until.js"

/**
 * `refresh_token` and proactive renewal over the real socket on the real file
 * store, with a token endpoint that fails on command, on the TestClock (which
 * starts at 0: token expiries below are seconds from then).
 */

const acme: OAuthProvider = {
  name: "acme",
  tokenEndpoint: "https://auth.acme.test/token",
  clientId: "client-1",
  scopes: []
}

/** Renewal jitter fixed for the tests. */
const JITTER_MS = 12_000

const open = (server: TestServer) => Effect.promise(() => FrameClient.open(server.socketPath))
const call = (client: FrameClient, op: string, payload?: Json) =>
  Effect.promise(() => client.request(op, payload))

const token = (fields: Json = {}) => ({
  access_token: "at-0",
  expiry: 0,
  token_type: "Bearer",
  refresh_token: "rt-0",
  account_id: "acct-7",
  ...fields
})

const seed = (dataDir: string, provider: string, value: Json, bucket = "default") =>
  Effect.scoped(
    Effect.flatMap(FileTokenStore.make(dataDir), (store) => store.save({ provider, bucket }, value))
  )

const stored = (dataDir: string, provider: string, bucket = "default") =>
  Effect.scoped(
    Effect.flatMap(FileTokenStore.make(dataDir), (store) => store.getLatest({ provider, bucket }))
  )

/** Waits in real time (bounded) until `check` holds: the server works on real I/O between clock steps. */
const waitUntil = (check: () => boolean) => Effect.promise(() => until(check, { intervalMs: 2 }))

const timersAt = (at: number) =>
  Effect.map(TestClock.sleeps(), (sleeps) => Chunk.filter(sleeps, (time) => time === at).length)

/**
 * The timers due `ms` from now. After stepping the clock to just before a
 * timer, finding it still pending proves that the fiber behind it has not
 * woken: the negative check that follows cannot pass by luck.
 */
const timersIn = (ms: number) => Effect.flatMap(TestClock.currentTimeMillis, (now) => timersAt(now + ms))

describe("refresh_token (PROTOCOL.md §6)", () => {
  it.scoped("checks NOT_FOUND, then PROVIDER_NOT_FOUND, then REAUTH_REQUIRED", () =>
    Effect.gen(function* () {
      const refresher = scriptedRefresher()
      const server = yield* startServer({ providers: [acme], refresher: refresher.layer })
      const client = yield* open(server)
      expect(yield* call(client, "refresh_token", { provider: "nobody" })).toMatchObject({
        ok: false,
        code: "NOT_FOUND"
      })
      yield* seed(server.dataDir, "other", token())
      expect(yield* call(client, "refresh_token", { provider: "other" })).toMatchObject({
        ok: false,
        code: "PROVIDER_NOT_FOUND"
      })
      yield* seed(server.dataDir, "acme", token({ refresh_token: undefined }), "bare")
      expect(yield* call(client, "refresh_token", { provider: "acme", bucket: "bare" })).toMatchObject({
        ok: false,
        code: "REAUTH_REQUIRED"
      })
      expect(refresher.calls()).toBe(0)
      client.close()
    })
  )

  it.scoped("refreshes an expired token: merged, saved with the new refresh token, answered sanitized", () =>
    Effect.gen(function* () {
      const refresher = scriptedRefresher()
      refresher.script.push(answer({ expires_in: 600, id_token: "id-1" }))
      const server = yield* startServer({ providers: [acme], refresher: refresher.layer })
      yield* seed(server.dataDir, "acme", token())
      yield* TestClock.setTime(1_000_000)
      const client = yield* open(server)
      const reply = yield* call(client, "refresh_token", { provider: "acme" })
      expect(reply).toEqual({
        v: 1,
        id: expect.any(String),
        ok: true,
        data: {
          access_token: "at-1",
          expiry: 1_000 + 600,
          token_type: "Bearer",
          account_id: "acct-7",
          id_token: "id-1"
        }
      })
      expect(refresher.presented).toEqual(["rt-0"])
      expect(yield* stored(server.dataDir, "acme")).toEqual({ ...reply.data, refresh_token: "rt-1" })

      // Valid again (expires in more than 30 s): answered without calling the provider.
      const again = yield* call(client, "refresh_token", { provider: "acme" })
      expect(again.data).toEqual(reply.data)
      expect(refresher.calls()).toBe(1)
      client.close()
    })
  )

  it.scoped("retries transient failures after 1 s and then 3 s, never sooner", () =>
    Effect.gen(function* () {
      const refresher = scriptedRefresher()
      refresher.script.push(fail("Transient"), fail("Transient"))
      const server = yield* startServer({ providers: [acme], refresher: refresher.layer })
      yield* seed(server.dataDir, "acme", token())
      const client = yield* open(server)
      const pending = yield* Effect.fork(call(client, "refresh_token", { provider: "acme" }))

      yield* waitUntil(() => refresher.calls() === 1)
      yield* awaitTimer(1_000)
      yield* TestClock.adjust(999)
      expect(yield* timersIn(1)).toBe(1)
      expect(refresher.calls()).toBe(1)
      yield* TestClock.adjust(1)
      yield* waitUntil(() => refresher.calls() === 2)

      yield* awaitTimer(3_000)
      yield* TestClock.adjust(2_999)
      expect(yield* timersIn(1)).toBe(1)
      expect(refresher.calls()).toBe(2)
      yield* TestClock.adjust(1)
      expect(yield* Fiber.join(pending)).toMatchObject({ ok: true, data: { access_token: "at-3" } })
      expect(refresher.calls()).toBe(3)
      client.close()
    })
  )

  it.scoped(
    "gives up after two retries with INTERNAL_ERROR; then the 30 s cooldown answers RATE_LIMITED",
    () =>
      Effect.gen(function* () {
        const refresher = scriptedRefresher()
        refresher.script.push(fail("Transient"), fail("Transient"), fail("Transient"))
        const server = yield* startServer({ providers: [acme], refresher: refresher.layer })
        yield* seed(server.dataDir, "acme", token())
        const client = yield* open(server)
        const pending = yield* Effect.fork(call(client, "refresh_token", { provider: "acme" }))
        yield* waitUntil(() => refresher.calls() === 1)
        yield* awaitTimer(1_000)
        yield* TestClock.adjust(1_000)
        yield* waitUntil(() => refresher.calls() === 2)
        yield* awaitTimer(3_000)
        yield* TestClock.adjust(3_000)
        const failed = yield* Fiber.join(pending)
        expect(failed).toMatchObject({ ok: false, code: "INTERNAL_ERROR", error: "provider unreachable" })
        expect(refresher.calls()).toBe(3)

        // The last refresh ended at 4 s; the token is expired, so inside the cooldown: RATE_LIMITED.
        expect(yield* call(client, "refresh_token", { provider: "acme" })).toMatchObject({
          ok: false,
          code: "RATE_LIMITED",
          retryAfter: 30
        })
        yield* TestClock.adjust(16_500)
        expect(yield* call(client, "refresh_token", { provider: "acme" })).toMatchObject({
          code: "RATE_LIMITED",
          retryAfter: 14
        })
        expect(refresher.calls()).toBe(3)
        yield* TestClock.adjust(13_500)
        expect(yield* call(client, "refresh_token", { provider: "acme" })).toMatchObject({
          ok: true,
          data: { access_token: "at-4" }
        })
        client.close()
      })
  )

  it.scoped("inside the cooldown a still-valid token is answered as it is", () =>
    Effect.gen(function* () {
      const refresher = scriptedRefresher()
      // A provider with very short tokens: 20 s is never "valid" by the 30 s margin.
      refresher.script.push(answer({ expires_in: 20 }), answer({ expires_in: 20 }))
      const server = yield* startServer({ providers: [acme], refresher: refresher.layer })
      yield* seed(server.dataDir, "acme", token())
      const client = yield* open(server)
      const first = yield* call(client, "refresh_token", { provider: "acme" })
      expect(first).toMatchObject({ ok: true, data: { access_token: "at-1", expiry: 20 } })

      yield* TestClock.adjust(5_000)
      const inside = yield* call(client, "refresh_token", { provider: "acme" })
      expect(inside).toMatchObject({ ok: true, data: { access_token: "at-1" } })
      expect(refresher.calls()).toBe(1)

      yield* TestClock.adjust(20_000)
      expect(yield* call(client, "refresh_token", { provider: "acme" })).toMatchObject({
        ok: false,
        code: "RATE_LIMITED",
        retryAfter: 5
      })
      yield* TestClock.adjust(5_000)
      expect(yield* call(client, "refresh_token", { provider: "acme" })).toMatchObject({
        ok: true,
        data: { access_token: "at-2" }
      })
      expect(refresher.calls()).toBe(2)
      client.close()
    })
  )

  it.scoped("invalid_grant is not retried: the stored refresh token is cleared, the rest stays", () =>
    Effect.gen(function* () {
      const refresher = scriptedRefresher()
      refresher.script.push(fail("Rejected"))
      const server = yield* startServer({ providers: [acme], refresher: refresher.layer })
      yield* seed(server.dataDir, "acme", token())
      const client = yield* open(server)
      expect(yield* call(client, "refresh_token", { provider: "acme" })).toMatchObject({
        ok: false,
        code: "REAUTH_REQUIRED"
      })
      expect(refresher.calls()).toBe(1)
      expect(yield* timersAt(1_000)).toBe(0)
      const { refresh_token: _cleared, ...rest } = token()
      expect(yield* stored(server.dataDir, "acme")).toEqual(rest)
      yield* TestClock.adjust(60_000)
      expect(yield* call(client, "refresh_token", { provider: "acme" })).toMatchObject({
        code: "REAUTH_REQUIRED"
      })
      expect(refresher.calls()).toBe(1)
      client.close()
    })
  )

  it.scoped("20 concurrent refresh_token on one key: one upstream call, 20 identical answers", () =>
    Effect.gen(function* () {
      const refresher = scriptedRefresher()
      const server = yield* startServer({ providers: [acme], refresher: refresher.layer })
      yield* seed(server.dataDir, "acme", token())
      const clients = yield* Effect.all(Array.from({ length: 4 }, () => open(server)))
      yield* refresher.hold()
      const pending = yield* Effect.fork(
        Effect.all(
          Array.from({ length: 20 }, (_, i) => call(clients[i % 4]!, "refresh_token", { provider: "acme" })),
          { concurrency: "unbounded" }
        )
      )
      yield* waitUntil(() => refresher.calls() === 1)
      yield* refresher.open
      const replies = yield* Fiber.join(pending)
      expect(replies).toHaveLength(20)
      for (const reply of replies) {
        expect(reply.ok).toBe(true)
        expect(reply.data).toEqual(replies[0].data)
      }
      expect(replies[0].data.access_token).toBe("at-1")
      expect(refresher.calls()).toBe(1)
      for (const client of clients) client.close()
    })
  )

  it.scoped("a logout during a slow refresh waits for it, then wins", () =>
    Effect.gen(function* () {
      const refresher = scriptedRefresher()
      const server = yield* startServer({ providers: [acme], refresher: refresher.layer })
      yield* seed(server.dataDir, "acme", token())
      const [a, b] = [yield* open(server), yield* open(server)]
      yield* refresher.hold()
      const refreshing = yield* Effect.fork(call(a, "refresh_token", { provider: "acme" }))
      yield* waitUntil(() => refresher.calls() === 1)
      const removing = yield* Effect.fork(call(b, "remove_token", { provider: "acme" }))
      // The removal has reached the lock the refresh holds, and waits there.
      yield* waitUntil(() => server.locks.waiting === 1 && server.locks.held === 1)
      expect(removing.unsafePoll()).toBeNull()
      expect(yield* stored(server.dataDir, "acme")).toMatchObject({ access_token: "at-0" })

      yield* refresher.open
      expect(yield* Fiber.join(refreshing)).toMatchObject({ ok: true, data: { access_token: "at-1" } })
      expect(yield* Fiber.join(removing)).toMatchObject({ ok: true })
      expect(yield* stored(server.dataDir, "acme")).toBeUndefined()
      expect(yield* call(a, "get_token", { provider: "acme" })).toMatchObject({ code: "NOT_FOUND" })
      a.close()
      b.close()
    })
  )

  it.scoped("the access policy is checked before any store or provider", () =>
    Effect.gen(function* () {
      const refresher = scriptedRefresher()
      const server = yield* startServer({ providers: [acme], refresher: refresher.layer, allow: ["other"] })
      yield* seed(server.dataDir, "acme", token())
      const client = yield* open(server)
      expect(yield* call(client, "refresh_token", { provider: "acme" })).toMatchObject({
        code: "UNAUTHORIZED"
      })
      expect(refresher.calls()).toBe(0)
      client.close()
    })
  )
})

/** A loopback token endpoint that answers every request with `status` and `body`, counting them. */
const cannedEndpoint = (status: number, body: string) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      let requests = 0
      const server = http.createServer((_req, res) => {
        requests++
        res.writeHead(status, { "content-type": "application/json" }).end(body)
      })
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/token`
      return { server, url, requests: () => requests }
    }),
    ({ server }) =>
      Effect.promise(
        () =>
          new Promise<void>((resolve) => {
            server.closeAllConnections()
            server.close(() => resolve())
          })
      )
  )

describe("failure kinds with the real (oauth4webapi) refresher", () => {
  const providerAt = (tokenEndpoint: string): OAuthProvider => ({ ...acme, tokenEndpoint })

  /** Drives the 1 s and 3 s retry timers of one refresh_token and returns its answer. */
  const refreshThroughRetries = (client: FrameClient, attempts: () => number) =>
    Effect.gen(function* () {
      const pending = yield* Effect.fork(call(client, "refresh_token", { provider: "acme" }))
      yield* waitUntil(() => attempts() === 1)
      yield* awaitTimer(1_000)
      yield* TestClock.adjust(1_000)
      yield* waitUntil(() => attempts() === 2)
      yield* awaitTimer(3_000)
      yield* TestClock.adjust(3_000)
      return yield* Fiber.join(pending)
    })

  it.scoped("a 503 is transient: three attempts, then INTERNAL_ERROR; the refresh token stays", () =>
    Effect.gen(function* () {
      const endpoint = yield* cannedEndpoint(503, '{"error":"temporarily_unavailable"}')
      const server = yield* startServer({ providers: [providerAt(endpoint.url)] })
      yield* seed(server.dataDir, "acme", token())
      const client = yield* open(server)
      const reply = yield* refreshThroughRetries(client, endpoint.requests)
      expect(reply).toMatchObject({ ok: false, code: "INTERNAL_ERROR", error: "provider unreachable" })
      expect(endpoint.requests()).toBe(3)
      expect(yield* stored(server.dataDir, "acme")).toEqual(token())
      client.close()
    })
  )

  it.scoped("a refused connection is transient too", () =>
    Effect.gen(function* () {
      const endpoint = yield* Effect.scoped(cannedEndpoint(200, "{}"))
      const server = yield* startServer({ providers: [providerAt(endpoint.url)] })
      yield* seed(server.dataDir, "acme", token())
      const client = yield* open(server)
      const pending = yield* Effect.fork(call(client, "refresh_token", { provider: "acme" }))
      yield* awaitTimer(1_000)
      yield* TestClock.adjust(1_000)
      yield* awaitTimer(3_000)
      yield* TestClock.adjust(3_000)
      expect(yield* Fiber.join(pending)).toMatchObject({
        code: "INTERNAL_ERROR",
        error: "provider unreachable"
      })
      client.close()
    })
  )

  it.scoped("any other error answer is not retried and keeps the refresh token", () =>
    Effect.gen(function* () {
      const endpoint = yield* cannedEndpoint(400, '{"error":"invalid_scope"}')
      const server = yield* startServer({ providers: [providerAt(endpoint.url)] })
      yield* seed(server.dataDir, "acme", token())
      const client = yield* open(server)
      expect(yield* call(client, "refresh_token", { provider: "acme" })).toMatchObject({
        ok: false,
        code: "INTERNAL_ERROR",
        error: "provider did not complete the refresh"
      })
      expect(endpoint.requests()).toBe(1)
      expect(yield* timersAt(1_000)).toBe(0)
      expect(yield* stored(server.dataDir, "acme")).toEqual(token())
      client.close()
    })
  )
})

describe("a refresh whose caller goes away", () => {
  it.scoped("still saves the provider's answer (the rotated refresh token is not lost)", () =>
    Effect.gen(function* () {
      const refresher = scriptedRefresher()
      const dataDir = yield* tempDir()
      yield* seed(dataDir, "acme", token({ expiry: 0 }))
      // The store lives as long as the test: its Layer is built into the test's scope.
      const context = yield* Layer.build(
        Layer.mergeAll(FileTokenStore.layer(dataDir), ProvidersFile.fromList([acme]), refresher.layer)
      )
      const coordinator = yield* RefreshCoordinatorLive.make().pipe(Effect.provide(context))
      yield* refresher.hold()
      const caller = yield* Effect.fork(coordinator.refresh({ provider: "acme", bucket: "default" }))
      yield* waitUntil(() => refresher.calls() === 1)
      yield* Fiber.interrupt(caller)
      yield* refresher.open
      yield* Effect.promise(() =>
        poll(
          () => Effect.runPromise(stored(dataDir, "acme")),
          (current) => current?.refresh_token === "rt-1",
          { what: "the rotated refresh token in the store" }
        )
      )
    })
  )
})

describe("proactive renewal", () => {
  // A one-hour token seen at 0: renewed at 3600 s − max(300 s, 360 s) − 12 s.
  const HOUR_TOKEN_RENEWAL_MS = 3_600_000 - 360_000 - JITTER_MS

  it("is computed as expiry − max(300 s, 10% of the time left) − jitter", () => {
    expect(renewalTime(3_600_000, 0, JITTER_MS)).toBe(HOUR_TOKEN_RENEWAL_MS)
    expect(renewalTime(1_000_000, 0, 0)).toBe(700_000)
    expect([1, 2, 3, 10].map(renewalBackoffMs)).toEqual([30_000, 60_000, 120_000, 600_000])
  })

  it.scoped(
    "the first get_token schedules one renewal; it fires at the computed time and schedules the next",
    () =>
      Effect.gen(function* () {
        const refresher = scriptedRefresher()
        const server = yield* startServer({
          providers: [acme],
          refresher: refresher.layer,
          jitter: Effect.succeed(JITTER_MS)
        })
        yield* seed(server.dataDir, "acme", token({ expiry: 3_600 }))
        yield* seed(server.dataDir, "acme", token({ expiry: 3_600, refresh_token: undefined }), "bare")
        yield* seed(server.dataDir, "other", token({ expiry: 3_600 }))
        const client = yield* open(server)
        for (let i = 0; i < 5; i++) {
          expect(yield* call(client, "get_token", { provider: "acme" })).toMatchObject({ ok: true })
        }
        yield* call(client, "get_token", { provider: "acme", bucket: "bare" })
        yield* call(client, "get_token", { provider: "other" })
        yield* awaitTimer(HOUR_TOKEN_RENEWAL_MS)
        expect(yield* server.renewal.scheduled).toBe(1)
        expect(yield* timersAt(HOUR_TOKEN_RENEWAL_MS)).toBe(1)

        yield* TestClock.adjust(HOUR_TOKEN_RENEWAL_MS - 1)
        expect(yield* timersIn(1)).toBe(1)
        expect(refresher.calls()).toBe(0)
        yield* TestClock.adjust(1)
        yield* waitUntil(() => refresher.calls() === 1)

        // Saved at 3228 s with a one-hour lifetime; the next renewal is one such period later.
        const next = HOUR_TOKEN_RENEWAL_MS
        yield* awaitTimer(next)
        expect(yield* stored(server.dataDir, "acme")).toMatchObject({
          access_token: "at-1",
          refresh_token: "rt-1",
          expiry: HOUR_TOKEN_RENEWAL_MS / 1000 + 3_600
        })
        const got = yield* call(client, "get_token", { provider: "acme" })
        expect(got.data).toMatchObject({ access_token: "at-1" })
        expect(got.data.refresh_token).toBeUndefined()
        yield* TestClock.adjust(next)
        yield* waitUntil(() => refresher.calls() === 2)
        expect(refresher.presented).toEqual(["rt-0", "rt-1"])
        client.close()
      })
  )

  it.scoped(
    "a timer that fires late (the machine slept) renews at once and reschedules from the wall clock",
    () =>
      Effect.gen(function* () {
        const refresher = scriptedRefresher()
        const server = yield* startServer({
          providers: [acme],
          refresher: refresher.layer,
          jitter: Effect.succeed(JITTER_MS),
          // A TestClock jump runs every timer it passes, the 15 s deadlines of the
          // renewal's own store and provider calls included; a real sleep does not
          // expire a deadline that way, so they are out of the jump's reach here.
          config: { storeCallTimeoutMs: 86_400_000, providerCallTimeoutMs: 86_400_000 }
        })
        yield* seed(server.dataDir, "acme", token({ expiry: 3_600 }))
        const client = yield* open(server)
        yield* call(client, "get_token", { provider: "acme" })
        yield* awaitTimer(HOUR_TOKEN_RENEWAL_MS)

        // Asleep from 0 to 10 000 s, long past the expiry at 3600 s; the provider answers after the wake-up.
        yield* refresher.hold()
        yield* TestClock.setTime(10_000_000)
        yield* waitUntil(() => refresher.calls() === 1)
        yield* refresher.open
        // The new token's lifetime and the next renewal count from the wall clock after the sleep.
        yield* awaitTimer(HOUR_TOKEN_RENEWAL_MS)
        expect(yield* stored(server.dataDir, "acme")).toMatchObject({ access_token: "at-1", expiry: 13_600 })
        expect(refresher.calls()).toBe(1)
        client.close()
      })
  )

  it.scoped("a token valid for 60 days still gets a timer that fires (sleeps cut at 2^31-1 ms)", () =>
    Effect.gen(function* () {
      const refresher = scriptedRefresher()
      const server = yield* startServer({
        providers: [acme],
        refresher: refresher.layer,
        jitter: Effect.succeed(0)
      })
      const sixtyDays = 60 * 86_400
      yield* seed(server.dataDir, "acme", token({ expiry: sixtyDays }))
      const client = yield* open(server)
      yield* call(client, "get_token", { provider: "acme" })
      // 10% of 60 days before expiry: 54 days, slept in chunks no timer can exceed.
      const renewAt = (sixtyDays - sixtyDays / 10) * 1000
      const chunk = 2 ** 31 - 1
      yield* awaitTimer(chunk)
      yield* TestClock.adjust(chunk)
      yield* awaitTimer(chunk)
      yield* TestClock.adjust(chunk)
      yield* awaitTimer(renewAt - 2 * chunk)
      yield* TestClock.adjust(renewAt - 2 * chunk - 1)
      expect(yield* timersIn(1)).toBe(1)
      expect(refresher.calls()).toBe(0)
      yield* TestClock.adjust(1)
      yield* waitUntil(() => refresher.calls() === 1)
      client.close()
    })
  )

  it.scoped(
    "a replaced token that expires sooner restarts its timer, also after one with an absurd expiry",
    () =>
      Effect.gen(function* () {
        const refresher = scriptedRefresher()
        const server = yield* startServer({
          providers: [acme],
          refresher: refresher.layer,
          jitter: Effect.succeed(JITTER_MS)
        })
        yield* seed(server.dataDir, "acme", token({ expiry: 1e15 }))
        const client = yield* open(server)
        expect((yield* call(client, "get_token", { provider: "acme" })).ok).toBe(true)
        yield* seed(server.dataDir, "acme", token({ expiry: 3_600 }))
        yield* TestClock.adjust("1 second")
        expect((yield* call(client, "get_token", { provider: "acme" })).data.expiry).toBe(3_600)
        // Seen at 1 s: 3600 s − max(300 s, 359.9 s) − 12 s = 3228.1 s, i.e. 3227.1 s from now.
        yield* awaitTimer(3_227_100)
        expect(yield* server.renewal.scheduled).toBe(1)
        client.close()
      })
  )

  it.scoped("a token renewed elsewhere meanwhile is only rescheduled", () =>
    Effect.gen(function* () {
      const refresher = scriptedRefresher()
      const server = yield* startServer({
        providers: [acme],
        refresher: refresher.layer,
        jitter: Effect.succeed(JITTER_MS)
      })
      yield* seed(server.dataDir, "acme", token({ expiry: 3_600 }))
      const client = yield* open(server)
      yield* call(client, "get_token", { provider: "acme" })
      yield* awaitTimer(HOUR_TOKEN_RENEWAL_MS)
      // Another process renews it (a new token valid until 7200 s).
      yield* seed(
        server.dataDir,
        "acme",
        token({ access_token: "at-other", expiry: 7_200, refresh_token: "rt-x" })
      )
      yield* TestClock.adjust(HOUR_TOKEN_RENEWAL_MS)
      // Rescheduled from 3228 s for the token expiring at 7200 s: 7200 − max(300, 397.2) − 12 = 6790.8 s.
      yield* awaitTimer(6_790_800 - HOUR_TOKEN_RENEWAL_MS)
      expect(refresher.calls()).toBe(0)
      client.close()
    })
  )

  it.scoped("a failed renewal backs off (after the coordinator's own retries), then renews", () =>
    Effect.gen(function* () {
      const refresher = scriptedRefresher()
      refresher.script.push(fail("Transient"), fail("Transient"), fail("Transient"))
      const server = yield* startServer({
        providers: [acme],
        refresher: refresher.layer,
        jitter: Effect.succeed(JITTER_MS)
      })
      yield* seed(server.dataDir, "acme", token({ expiry: 3_600 }))
      const client = yield* open(server)
      yield* call(client, "get_token", { provider: "acme" })
      yield* awaitTimer(HOUR_TOKEN_RENEWAL_MS)
      yield* TestClock.adjust(HOUR_TOKEN_RENEWAL_MS)
      yield* waitUntil(() => refresher.calls() === 1)
      yield* awaitTimer(1_000)
      yield* TestClock.adjust(1_000)
      yield* waitUntil(() => refresher.calls() === 2)
      yield* awaitTimer(3_000)
      yield* TestClock.adjust(3_000)
      yield* waitUntil(() => refresher.calls() === 3)

      // The renewal failed: it tries again after 30 s (the first backoff step), not sooner.
      yield* awaitTimer(30_000)
      yield* TestClock.adjust(29_999)
      expect(yield* timersIn(1)).toBe(1)
      expect(refresher.calls()).toBe(3)
      yield* TestClock.adjust(1)
      yield* waitUntil(() => refresher.calls() === 4)
      yield* awaitTimer(HOUR_TOKEN_RENEWAL_MS)
      expect(yield* stored(server.dataDir, "acme")).toMatchObject({ access_token: "at-4" })
      client.close()
    })
  )

  it.scoped("stopping the server leaves no renewal timer behind", () =>
    Effect.gen(function* () {
      const refresher = scriptedRefresher()
      let dataDir = ""
      const renewal = yield* Effect.scoped(
        Effect.gen(function* () {
          const server = yield* startServer({
            providers: [acme],
            refresher: refresher.layer,
            jitter: Effect.succeed(JITTER_MS)
          })
          dataDir = server.dataDir
          yield* seed(server.dataDir, "acme", token({ expiry: 3_600 }))
          const client = yield* open(server)
          yield* call(client, "get_token", { provider: "acme" })
          yield* awaitTimer(HOUR_TOKEN_RENEWAL_MS)
          expect(yield* server.renewal.scheduled).toBe(1)
          client.close()
          return server.renewal
        })
      )
      expect(yield* renewal.scheduled).toBe(0)
      expect(fs.existsSync(path.dirname(dataDir))).toBe(false)
      // No timer is left to wake (scheduled is 0 above), so nothing can call the provider now.
      yield* TestClock.adjust(10_000_000)
      expect(refresher.calls()).toBe(0)
    })
  )
})
