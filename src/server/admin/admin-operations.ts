import * as Effect from "effect/Effect"
import { InvalidRequest, type ProxyError } from "../../errors/errors.js"
import type { AdminRequest } from "../../protocol/admin.js"
import type { AccessPolicyShape } from "../../services/AccessPolicy.js"
import type { AuditLogShape } from "../../services/AuditLog.js"
import type { AuditTailShape } from "../../services/AuditTail.js"
import type { ConfirmationsShape } from "../../services/Confirmations.js"
import type { RefreshCoordinatorShape } from "../../services/RefreshCoordinator.js"
import type { TokenRenewalShape } from "../../services/TokenRenewal.js"
import type { ConnectionView, StatusSnapshot } from "../ServerStatus.js"
import type { AdminStatusData } from "./admin-status.js"

/** The running server as the admin socket sees it. */
export interface ServerView {
  readonly socketPath: string
  readonly adminSocketPath: string
  /** Wall clock, milliseconds since the epoch. */
  readonly startedAt: number
  readonly restrict: boolean
  readonly capabilityToken: boolean
  readonly status: () => StatusSnapshot
  readonly connections: () => Iterable<ConnectionView>
}

export interface AdminDeps {
  readonly view: ServerView
  readonly policy: AccessPolicyShape
  readonly confirm: ConfirmationsShape
  readonly tail: AuditTailShape
  readonly refresh: RefreshCoordinatorShape
  readonly renewal: TokenRenewalShape
  readonly audit: AuditLogShape
  /** Wall clock milliseconds. */
  readonly nowMs: () => number
}

const seconds = (ms: number) => Math.round(ms / 1000)

/** Everything `credproxy status` shows, from what the server holds now. */
const statusOf = (deps: AdminDeps): AdminStatusData => {
  const { view, nowMs } = deps
  const now = nowMs()
  const refreshes = new Map<
    string,
    { -readonly [K in keyof AdminStatusData["refresh"][number]]: number | string }
  >()
  const entry = (key: string) => {
    let found = refreshes.get(key)
    if (found === undefined) {
      found = { key }
      refreshes.set(key, found)
    }
    return found
  }
  for (const { key, expiry } of deps.renewal.renewals())
    entry(key).expiresInSeconds = seconds(expiry * 1000 - now)
  for (const recent of deps.refresh.recentRefreshes()) {
    const found = entry(recent.key)
    found.lastRefreshSecondsAgo = seconds(recent.msAgo)
    found.cooldownSeconds = Math.ceil(recent.cooldownLeftMs / 1000)
  }
  return {
    pid: process.pid,
    startedAt: view.startedAt,
    uptimeSeconds: seconds(now - view.startedAt),
    sockets: { sandbox: view.socketPath, admin: view.adminSocketPath },
    restrict: view.restrict,
    confirm: deps.confirm.enabled,
    capabilityToken: view.capabilityToken,
    policy: deps.policy.rules(),
    connections: [...view.connections()].map(({ info, requestsInFlight }) => ({
      ...(info.peer.pid === undefined ? {} : { peerPid: info.peer.pid }),
      ...(info.peer.uid === undefined ? {} : { peerUid: info.peer.uid }),
      connectedAt: info.connectedAt,
      ...(info.version === undefined ? {} : { version: info.version }),
      requests: { ...info.requests },
      inFlight: requestsInFlight
    })),
    counters: view.status(),
    refresh: [...refreshes.values()] as AdminStatusData["refresh"],
    waiting: deps.confirm.waiting(),
    audit: deps.tail.recent()
  }
}

/**
 * The admin socket's operations: reading the server's state, changing its
 * access policy (audited), and answering uses that wait for confirmation.
 * Each answers its `data` as JSON.
 */
export const makeAdminOperations =
  (deps: AdminDeps) =>
  (request: AdminRequest): Effect.Effect<string, ProxyError> =>
    Effect.suspend(() => {
      switch (request.op) {
        case "status":
          return Effect.succeed(JSON.stringify(statusOf(deps)))
        case "policy_show":
          return Effect.succeed(JSON.stringify(deps.policy.rules()))
        case "policy_change": {
          const { kind, spec } = request.payload
          const changed = deps.policy.change({ kind, spec })
          if (changed._tag === "Left") {
            return Effect.fail(new InvalidRequest({ reason: "InvalidPolicy", detail: changed.left }))
          }
          deps.audit.event("Info", "access policy changed", { change: kind, spec })
          return Effect.succeed(JSON.stringify(changed.right))
        }
        case "approvals":
          return Effect.succeed(JSON.stringify({ pending: deps.confirm.waiting() }))
        case "approve": {
          const answered = deps.confirm.answer(request.payload.id, request.payload.answer)
          return Effect.succeed(JSON.stringify({ answered }))
        }
      }
    })
