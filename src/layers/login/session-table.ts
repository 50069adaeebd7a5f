import * as Either from "effect/Either"
import { LoginSessionError, LoginSessionLimit } from "../../errors/login-errors.js"
import type { LoginFlow } from "../../protocol/login.js"
import type { AuthorizationSecrets, LoginServer } from "../../services/LoginClient.js"
import type { LoginOutcome } from "../../services/LoginSessions.js"
import type { OAuthProvider } from "../../services/OAuthProviders.js"
import type { TokenKey } from "../../services/TokenStore.js"

/**
 * Where a session is: waiting for the user (polling, listening, or for a
 * pasted code), finished with an outcome not yet reported, or used up (its
 * code exchanged, or its outcome reported): single use.
 */
export type Phase =
  | { readonly _tag: "Waiting" }
  | { readonly _tag: "Finished"; readonly outcome: LoginOutcome }
  | { readonly _tag: "Used" }

/** One login session. Its secrets never leave this object except towards the provider. */
export interface Session {
  readonly id: string
  /** The identity that started it; any other is told it does not exist. */
  readonly owner: string
  readonly key: TokenKey
  readonly flow: LoginFlow
  readonly provider: OAuthProvider
  readonly server: LoginServer
  /** Clock ms after which it answers `SESSION_EXPIRED` (and its polling or listener has ended). */
  readonly expiresAt: number
  /** What `oauth_poll` tells a client (device: the provider's interval, grown by `slow_down`). */
  pollIntervalMs: number
  phase: Phase
  /** PKCE verifier, challenge and state (the code flows). */
  readonly secrets?: AuthorizationSecrets
  readonly redirectUri?: string
}

const seconds = (ms: number): number => Math.max(1, Math.ceil(ms / 1000))

/**
 * The sessions of a server (or of one `credproxy login`), in the order they
 * were made, with their two bounds: live sessions per identity (a session
 * being started counts, so concurrent starts cannot pass the bound
 * together), and sessions of any kind held at all, where a finished or
 * expired one is dropped to make room for a new one.
 */
export class SessionTable {
  private readonly sessions = new Map<string, Session>()
  /** Starts in progress, by owner. */
  private readonly starting = new Map<string, number>()
  private startingTotal = 0

  constructor(private readonly limits: { readonly perIdentity: number; readonly total: number }) {}

  get size(): number {
    return this.sessions.size
  }

  get(id: string): Session | undefined {
    return this.sessions.get(id)
  }

  /** The session `id` of `owner`: not found for another identity, expired past its lifetime. */
  find(owner: string, id: string, now: number): Either.Either<Session, LoginSessionError> {
    const session = this.sessions.get(id)
    if (session === undefined || session.owner !== owner) {
      return Either.left(new LoginSessionError({ reason: "NotFound" }))
    }
    if (session.expiresAt <= now) return Either.left(new LoginSessionError({ reason: "Expired" }))
    return Either.right(session)
  }

  private isLive(session: Session, now: number): boolean {
    return session.phase._tag === "Waiting" && session.expiresAt > now
  }

  /**
   * Makes room for a new session of `owner`, or says when to try again.
   * Returns the ids of sessions dropped to make room (finished or expired
   * ones; their fibers must be stopped).
   */
  reserve(owner: string, now: number): Either.Either<ReadonlyArray<string>, LoginSessionLimit> {
    let live = this.starting.get(owner) ?? 0
    let oldestOwn = Number.POSITIVE_INFINITY
    for (const session of this.sessions.values()) {
      if (session.owner !== owner || !this.isLive(session, now)) continue
      live++
      oldestOwn = Math.min(oldestOwn, session.expiresAt)
    }
    if (live >= this.limits.perIdentity) {
      return Either.left(
        new LoginSessionLimit({ retryAfter: Number.isFinite(oldestOwn) ? seconds(oldestOwn - now) : 1 })
      )
    }
    const dropped: Array<string> = []
    let oldestLive = Number.POSITIVE_INFINITY
    for (const session of this.sessions.values()) {
      if (this.sessions.size + this.startingTotal < this.limits.total) break
      if (this.isLive(session, now)) {
        oldestLive = Math.min(oldestLive, session.expiresAt)
        continue
      }
      this.sessions.delete(session.id)
      dropped.push(session.id)
    }
    if (this.sessions.size + this.startingTotal >= this.limits.total) {
      return Either.left(
        new LoginSessionLimit({ retryAfter: Number.isFinite(oldestLive) ? seconds(oldestLive - now) : 1 })
      )
    }
    this.starting.set(owner, (this.starting.get(owner) ?? 0) + 1)
    this.startingTotal++
    return Either.right(dropped)
  }

  /** A start reserved with `reserve` is over (added, or failed). */
  release(owner: string): void {
    const count = (this.starting.get(owner) ?? 1) - 1
    if (count > 0) this.starting.set(owner, count)
    else this.starting.delete(owner)
    this.startingTotal = Math.max(0, this.startingTotal - 1)
  }

  add(session: Session): void {
    this.sessions.set(session.id, session)
  }

  remove(id: string): Session | undefined {
    const session = this.sessions.get(id)
    this.sessions.delete(id)
    return session
  }

  /** Removes every session past its lifetime; their ids. */
  collect(now: number): ReadonlyArray<string> {
    const expired: Array<string> = []
    for (const session of this.sessions.values()) {
      if (session.expiresAt <= now) expired.push(session.id)
    }
    for (const id of expired) this.sessions.delete(id)
    return expired
  }
}
