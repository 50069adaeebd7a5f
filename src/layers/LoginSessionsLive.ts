import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as FiberHandle from "effect/FiberHandle"
import * as FiberMap from "effect/FiberMap"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import { InvalidRequest, ProviderNotFound } from "../errors/errors.js"
import { ExchangeFailed, LoginSessionError } from "../errors/login-errors.js"
import type { LoginFlow } from "../protocol/login.js"
import { AuditLog } from "../services/AuditLog.js"
import { LoginClient } from "../services/LoginClient.js"
import {
  COLLECTION_INTERVAL_MS,
  chooseFlow,
  type LoginOutcome,
  LoginSessions,
  type LoginSessionsShape,
  newSessionId,
  sameSecret,
  sessionIdPrefix,
  splitPastedCode
} from "../services/LoginSessions.js"
import { type OAuthProvider, OAuthProviders } from "../services/OAuthProviders.js"
import { TokenQuota } from "../services/TokenQuota.js"
import { type TokenKey, TokenStore } from "../services/TokenStore.js"
import { makeFlows, type SessionBase } from "./login/login-flows.js"
import { startFailed, storeLogin } from "./login/login-store.js"
import { type Session, SessionTable } from "./login/session-table.js"

/** Bounds and timers of the sessions (PROTOCOL.md §10, §17). */
export interface LoginSessionsOptions {
  readonly lifetimeMs: number
  readonly maxPerIdentity: number
  readonly maxSessions: number
  /** The deadline of one call to the provider. */
  readonly providerTimeoutMs: number
}

const NOT_FOR_THIS_FLOW = new InvalidRequest({ reason: "NotForThisFlow" })
const MALFORMED_CODE = new InvalidRequest({ reason: "MalformedCode" })
const ALREADY_USED = new LoginSessionError({ reason: "AlreadyUsed" })

/**
 * The login sessions of one server (or of one `credproxy login`), as
 * `services/LoginSessions.ts` describes. Each session's background work (a
 * device login's polling, a browser login's loopback listener) is a fiber in
 * one `FiberMap` keyed by session id, so a cancel, the session's expiry or
 * the end of this Layer's scope stops it at once; expired sessions are
 * collected every 60 s on the Clock.
 */
export const make = (
  options: LoginSessionsOptions
): Effect.Effect<
  LoginSessionsShape,
  never,
  Scope.Scope | LoginClient | OAuthProviders | TokenStore | TokenQuota | AuditLog
> =>
  Effect.gen(function* () {
    const client = yield* LoginClient
    const providers = yield* OAuthProviders
    const tokens = yield* TokenStore
    const quota = yield* TokenQuota
    const audit = yield* AuditLog
    const clock = yield* Effect.clock
    const now = () => clock.unsafeCurrentTimeMillis()
    const table = new SessionTable({ perIdentity: options.maxPerIdentity, total: options.maxSessions })
    const fibers = yield* FiberMap.make<string>()
    // A session's work ends in its own outcome; nothing it does is for the runtime to log.
    const runFiber = yield* FiberMap.runtime(fibers)<never>().pipe(
      Effect.withUnhandledErrorLogLevel(Option.none())
    )

    const logLine = (op: string, session: Session, outcome: string) =>
      audit.event("Info", "login", {
        op,
        provider: session.key.provider,
        bucket: session.key.bucket,
        flow: session.flow,
        session: sessionIdPrefix(session.id),
        outcome
      })
    const outcomeName = (outcome: LoginOutcome) => (outcome._tag === "Complete" ? "complete" : outcome.code)

    const flows = makeFlows({
      client,
      table,
      lifetimeMs: options.lifetimeMs,
      providerTimeoutMs: options.providerTimeoutMs,
      now,
      store: storeLogin({ tokens, quota, audit, nowMs: now }),
      runFiber: (id, work) => runFiber(id, work),
      finished: (id, outcome) => {
        const session = table.get(id)
        if (session === undefined || session.phase._tag !== "Waiting") return
        session.phase = { _tag: "Finished", outcome }
        logLine("login", session, outcomeName(outcome))
      }
    })

    /**
     * The collection: every 60 s while any session is held, expired ones are
     * removed (their fibers stopped). It stops when none is left, so an idle
     * server has no timer.
     */
    const collector = yield* FiberHandle.make<void, never>()
    const collectEvery60s: Effect.Effect<void> = Effect.gen(function* () {
      while (table.size > 0) {
        yield* Effect.sleep(Duration.millis(COLLECTION_INTERVAL_MS))
        yield* Effect.forEach(table.collect(now()), (id) => FiberMap.remove(fibers, id), { discard: true })
      }
    })
    const collecting = FiberHandle.run(collector, collectEvery60s, { onlyIfMissing: true })

    const start = (owner: string, key: TokenKey, provider: OAuthProvider, asked: LoginFlow | undefined) =>
      Effect.gen(function* () {
        const server = yield* flows
          .deadline(client.server(provider))
          .pipe(Effect.mapError((issue) => startFailed(key.provider, issue)))
        const flow = chooseFlow(provider, server, asked)
        if (Either.isLeft(flow))
          return yield* new ProviderNotFound({ provider: key.provider, login: flow.left })
        const base: SessionBase = { id: newSessionId(), owner, key, flow: flow.right, provider, server }
        const started = yield* (
          flow.right === "device_code"
            ? flows.startDevice(base)
            : flow.right === "pkce_redirect"
              ? flows.startPkce(base, provider.login?.redirectUri ?? "")
              : flows.startBrowser(base)
        ).pipe(
          // A start that fails or is abandoned leaves nothing behind: no session, no fiber, no listener.
          Effect.onExit((exit) =>
            Exit.isSuccess(exit)
              ? Effect.void
              : Effect.zipRight(
                  Effect.sync(() => table.remove(base.id)),
                  FiberMap.remove(fibers, base.id)
                )
          )
        )
        const session = table.get(base.id)
        if (session !== undefined) logLine("oauth_initiate", session, "ok")
        yield* collecting
        return started
      })

    const initiate: LoginSessionsShape["initiate"] = (owner, key, startOptions = {}) =>
      Effect.suspend((): ReturnType<LoginSessionsShape["initiate"]> => {
        const provider = providers.get(key.provider)
        if (provider === undefined) return Effect.fail(new ProviderNotFound({ provider: key.provider }))
        const reserved = table.reserve(owner, now())
        if (Either.isLeft(reserved)) return Effect.fail(reserved.left)
        return Effect.zipRight(
          Effect.forEach(reserved.right, (id) => FiberMap.remove(fibers, id), { discard: true }),
          start(owner, key, provider, startOptions.flow)
        ).pipe(Effect.ensuring(Effect.sync(() => table.release(owner))))
      })

    const exchange: LoginSessionsShape["exchange"] = (owner, sessionId, pasted) =>
      Effect.suspend((): ReturnType<LoginSessionsShape["exchange"]> => {
        const found = table.find(owner, sessionId, now())
        if (Either.isLeft(found)) return Effect.fail(found.left)
        const session = found.right
        if (session.flow !== "pkce_redirect") return Effect.fail(NOT_FOR_THIS_FLOW)
        if (session.phase._tag !== "Waiting") return Effect.fail(ALREADY_USED)
        const split = splitPastedCode(pasted)
        if (split === undefined) return Effect.fail(MALFORMED_CODE)
        // Used from here on, whatever the exchange ends in: a code is tried once.
        session.phase = { _tag: "Used" }
        const state = session.secrets?.state ?? ""
        const exchanged =
          split.state !== undefined && !sameSecret(split.state, state)
            ? Effect.fail(new ExchangeFailed({ provider: session.key.provider, reason: "StateMismatch" }))
            : flows.exchangeCode(session, new URLSearchParams({ code: split.code, state }), false)
        return Effect.tapBoth(exchanged, {
          onFailure: (error) => Effect.sync(() => logLine("oauth_exchange", session, error.reason)),
          onSuccess: () => Effect.sync(() => logLine("oauth_exchange", session, "complete"))
        })
      })

    const poll: LoginSessionsShape["poll"] = (owner, sessionId) => {
      const found = table.find(owner, sessionId, now())
      if (Either.isLeft(found)) return Either.left(found.left)
      const session = found.right
      if (session.flow === "pkce_redirect") return Either.left(NOT_FOR_THIS_FLOW)
      const phase = session.phase
      switch (phase._tag) {
        case "Used":
          return Either.left(ALREADY_USED)
        case "Waiting":
          return Either.right({ _tag: "Pending", pollIntervalMs: session.pollIntervalMs })
        case "Finished":
          session.phase = { _tag: "Used" }
          logLine("oauth_poll", session, outcomeName(phase.outcome))
          return Either.right(phase.outcome)
      }
    }

    const cancel: LoginSessionsShape["cancel"] = (owner, sessionId) =>
      Effect.suspend(() => {
        const session = table.get(sessionId)
        if (session === undefined || session.owner !== owner) return Effect.void
        table.remove(sessionId)
        logLine("oauth_cancel", session, "cancelled")
        return FiberMap.remove(fibers, sessionId)
      })

    return LoginSessions.of({ initiate, exchange, poll, cancel, size: () => table.size })
  })

export const layer = (
  options: LoginSessionsOptions
): Layer.Layer<LoginSessions, never, LoginClient | OAuthProviders | TokenStore | TokenQuota | AuditLog> =>
  Layer.scoped(LoginSessions, make(options))
