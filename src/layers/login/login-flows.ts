import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import type { ExchangeFailed, LoginStartFailed } from "../../errors/login-errors.js"
import { describeProviderCall, type ProviderCallIssue } from "../../errors/provider-call.js"
import type { InitiateData } from "../../protocol/login.js"
import type { OAuthToken } from "../../protocol/token.js"
import type { LoginClientShape } from "../../services/LoginClient.js"
import {
  BROWSER_POLL_INTERVAL_MS,
  DEFAULT_POLL_INTERVAL_MS,
  type LoginOutcome,
  sameSecret
} from "../../services/LoginSessions.js"
import type { RefreshedToken } from "../../services/TokenRefresher.js"
import type { TokenKey } from "../../services/TokenStore.js"
import { ACCESS_DENIED, failedOutcome, pollDevice } from "./device-polling.js"
import { exchangeFailed, startFailed } from "./login-store.js"
import { type Callback, listenOnLoopback } from "./loopback-listener.js"
import type { Session, SessionTable } from "./session-table.js"

/** What the three flows work with: the provider's side, the sessions, and how work is run and stored. */
export interface FlowContext {
  readonly client: LoginClientShape
  readonly table: SessionTable
  readonly lifetimeMs: number
  readonly providerTimeoutMs: number
  readonly now: () => number
  readonly store: (key: TokenKey, answer: RefreshedToken) => Effect.Effect<OAuthToken, ExchangeFailed>
  /** Runs session `id`'s background work (in the sessions' `FiberMap`). */
  readonly runFiber: (id: string, work: Effect.Effect<void>) => Fiber.RuntimeFiber<void>
  /** A session's work ended before its expiry, in `outcome`. */
  readonly finished: (id: string, outcome: LoginOutcome) => void
}

/** What every session of one start shares before its flow adds its own parts. */
export type SessionBase = Pick<Session, "id" | "owner" | "key" | "flow" | "provider" | "server">

const PROVIDER_TIMEOUT: ProviderCallIssue = { reason: "Transient", kind: "Timeout" }

/**
 * The three ways a login is completed (PROTOCOL.md §17): `startDevice`
 * (RFC 8628: the host polls), `startPkce` (the user pastes the code;
 * `exchangeCode` is then called by `oauth_exchange`) and `startBrowser` (a
 * loopback listener takes the redirect). Each adds its session to the table
 * once it is ready; the caller removes whatever a failed start left.
 */
export const makeFlows = (ctx: FlowContext) => {
  const { client, table, now } = ctx

  /** One provider call under the §10 deadline. */
  const deadline = <A>(call: Effect.Effect<A, ProviderCallIssue>) =>
    Effect.timeoutFail(call, {
      duration: Duration.millis(ctx.providerTimeoutMs),
      onTimeout: () => PROVIDER_TIMEOUT
    })

  /** Session `id`'s work, stopped at its expiry. */
  const background = (id: string, expiresAt: number, work: Effect.Effect<LoginOutcome>) =>
    Effect.sync(() =>
      ctx.runFiber(
        id,
        work.pipe(
          Effect.timeoutOption(Duration.millis(Math.max(0, expiresAt - now()))),
          Effect.flatMap((ended) =>
            Effect.sync(() => {
              if (Option.isSome(ended)) ctx.finished(id, ended.value)
            })
          )
        )
      )
    )

  /** Exchanges a code for a token and stores it. */
  const exchangeCode = (
    session: Session,
    callback: URLSearchParams,
    checkIssuer: boolean
  ): Effect.Effect<OAuthToken, ExchangeFailed> =>
    deadline(
      client.exchangeCode(session.provider, session.server, {
        callback,
        redirectUri: session.redirectUri ?? "",
        verifier: session.secrets?.verifier ?? "",
        state: session.secrets?.state ?? "",
        checkIssuer
      })
    ).pipe(
      Effect.tapError((issue) =>
        Effect.logWarning("login code exchange failed").pipe(
          Effect.annotateLogs({ provider: session.key.provider, detail: describeProviderCall(issue) })
        )
      ),
      Effect.mapError((issue) => exchangeFailed(session.key.provider, issue)),
      Effect.flatMap((answer) => ctx.store(session.key, answer))
    )

  /** The browser login: waits for the redirect that carries this session's state, then exchanges its code. */
  const awaitRedirect = (session: Session, next: Effect.Effect<Callback>): Effect.Effect<LoginOutcome> =>
    Effect.gen(function* () {
      for (;;) {
        const callback = yield* next
        const state = callback.params.get("state")
        if (state === null || !sameSecret(state, session.secrets?.state ?? "")) {
          // Not this login's redirect (another tab, another process): it does not end the session.
          callback.respond(400, "This is not the login credproxy is waiting for.")
          continue
        }
        if (callback.params.get("error") === "access_denied") {
          callback.respond(200, "The login was refused. You can close this window.")
          return ACCESS_DENIED
        }
        const outcome = yield* Effect.either(exchangeCode(session, callback.params, true))
        if (Either.isLeft(outcome)) {
          callback.respond(400, `The login failed: ${outcome.left.message}.`)
          return failedOutcome(outcome.left)
        }
        callback.respond(200, "Logged in. You can close this window and return to the terminal.")
        return { _tag: "Complete", token: outcome.right }
      }
    })

  const startDevice = (base: SessionBase): Effect.Effect<InitiateData, LoginStartFailed> =>
    Effect.gen(function* () {
      const device = yield* deadline(client.deviceAuthorization(base.provider, base.server)).pipe(
        Effect.mapError((issue) => startFailed(base.key.provider, issue))
      )
      const lifetimeMs = Math.min(ctx.lifetimeMs, device.expiresInSeconds * 1000)
      const session: Session = {
        ...base,
        expiresAt: now() + lifetimeMs,
        pollIntervalMs:
          device.intervalSeconds === undefined ? DEFAULT_POLL_INTERVAL_MS : device.intervalSeconds * 1000,
        phase: { _tag: "Waiting" }
      }
      table.add(session)
      yield* background(
        session.id,
        session.expiresAt,
        pollDevice(
          session,
          deadline(client.deviceToken(session.provider, session.server, device.deviceCode)),
          (answer) => ctx.store(session.key, answer)
        )
      )
      return {
        flow_type: "device_code",
        session_id: session.id,
        ...device.shown,
        pollIntervalMs: session.pollIntervalMs,
        expiresInSeconds: Math.ceil(lifetimeMs / 1000)
      }
    })

  const startPkce = (base: SessionBase, redirectUri: string): Effect.Effect<InitiateData> =>
    Effect.map(client.secrets, (secrets) => {
      const session: Session = {
        ...base,
        expiresAt: now() + ctx.lifetimeMs,
        pollIntervalMs: 0,
        phase: { _tag: "Waiting" },
        secrets,
        redirectUri
      }
      table.add(session)
      return {
        flow_type: "pkce_redirect",
        session_id: session.id,
        auth_url: client.authorizationUrl(session.provider, session.server, { redirectUri, secrets }),
        expiresInSeconds: Math.ceil(ctx.lifetimeMs / 1000)
      }
    })

  const startBrowser = (base: SessionBase): Effect.Effect<InitiateData> =>
    Effect.gen(function* () {
      const secrets = yield* client.secrets
      const ready = yield* Deferred.make<Session>()
      const expiresAt = now() + ctx.lifetimeMs
      // The listener belongs to the session's fiber: it closes when the fiber ends, however it ends.
      const work = Effect.scoped(
        Effect.gen(function* () {
          const listener = yield* listenOnLoopback
          const session: Session = {
            ...base,
            expiresAt,
            pollIntervalMs: BROWSER_POLL_INTERVAL_MS,
            phase: { _tag: "Waiting" },
            secrets,
            redirectUri: listener.redirectUri
          }
          table.add(session)
          yield* Deferred.succeed(ready, session)
          return yield* awaitRedirect(session, listener.next)
        })
      ).pipe(
        // A listener that cannot start (or a stop meanwhile) must not leave the start waiting.
        Effect.onExit((exit) => (Exit.isFailure(exit) ? Deferred.failCause(ready, exit.cause) : Effect.void))
      )
      yield* background(base.id, expiresAt, work)
      const session = yield* Deferred.await(ready)
      return {
        flow_type: "browser_redirect",
        session_id: session.id,
        auth_url: client.authorizationUrl(session.provider, session.server, {
          redirectUri: session.redirectUri ?? "",
          secrets
        }),
        pollIntervalMs: BROWSER_POLL_INTERVAL_MS,
        expiresInSeconds: Math.ceil(ctx.lifetimeMs / 1000)
      }
    })

  return { deadline, exchangeCode, startDevice, startPkce, startBrowser }
}
