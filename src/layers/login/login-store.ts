import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import type { StoreError } from "../../errors/errors.js"
import { ExchangeFailed, LoginStartFailed } from "../../errors/login-errors.js"
import type { ProviderCallIssue } from "../../errors/provider-call.js"
import { MAX_STORED_TOKEN_BYTES } from "../../protocol/limits.js"
import { type OAuthToken, storedTokenBytes } from "../../protocol/token.js"
import type { AuditLogShape } from "../../services/AuditLog.js"
import { answerToToken } from "../../services/RefreshCoordinator.js"
import type { TokenQuotaShape } from "../../services/TokenQuota.js"
import type { RefreshedToken } from "../../services/TokenRefresher.js"
import type { TokenKey, TokenStoreShape } from "../../services/TokenStore.js"

/**
 * The last step of every login, and how provider failures read: the
 * provider's answer becomes a token (§7) and replaces what was stored under
 * the key's lock, the one `save_token` and `refresh_token` take.
 */

/** oauth4webapi lowercases `token_type`; a bearer token is stored with the usual spelling. */
const USUAL_SPELLING = { token_type: "Bearer" }

export const storeLogin =
  (deps: {
    readonly tokens: TokenStoreShape
    readonly quota: TokenQuotaShape
    readonly audit: AuditLogShape
    readonly nowMs: () => number
  }) =>
  (key: TokenKey, answer: RefreshedToken): Effect.Effect<OAuthToken, ExchangeFailed> => {
    const failed = (reason: ExchangeFailed["reason"]) =>
      new ExchangeFailed({ provider: key.provider, reason })
    const token = answerToToken(answer, USUAL_SPELLING, deps.nowMs())
    if (Either.isLeft(token)) return Effect.fail(failed("BadAnswer"))
    if (storedTokenBytes(token.right) > MAX_STORED_TOKEN_BYTES) return Effect.fail(failed("TokenTooLarge"))
    const save = Effect.uninterruptible(deps.tokens.save(key, token.right))
    return Effect.scoped(
      Effect.zipRight(
        deps.tokens.lock(key),
        Effect.flatMap(
          deps.tokens.getLatest(key),
          (stored): Effect.Effect<void, StoreError | ExchangeFailed> => {
            if (stored !== undefined) return save
            if (!deps.quota.take()) return Effect.fail(failed("StoreLimit"))
            return Effect.tapError(save, () => Effect.sync(deps.quota.giveBack))
          }
        )
      )
    ).pipe(
      Effect.catchTags({
        StoreFailure: (error) => {
          deps.audit.event("Error", "store call failed", {
            op: "login",
            operation: error.operation,
            reason: error.reason,
            ...(error.code === undefined ? {} : { code: error.code })
          })
          return Effect.fail(failed("StoreFailed"))
        },
        StoreTimeout: (error) => {
          deps.audit.event("Error", "store call timed out", { op: "login", operation: error.operation })
          return Effect.fail(failed("StoreFailed"))
        }
      }),
      Effect.as(token.right)
    )
  }

/** A provider call of a login start that failed. */
export const startFailed = (provider: string, issue: ProviderCallIssue): LoginStartFailed =>
  new LoginStartFailed({ provider, call: issue })

/** A code exchange (or a device poll that ended badly) as `ExchangeFailed`. */
export const exchangeFailed = (provider: string, issue: ProviderCallIssue): ExchangeFailed =>
  new ExchangeFailed({
    provider,
    reason:
      issue.reason === "Transient"
        ? "Unreachable"
        : issue.kind === "Malformed" || issue.kind === "NoEndpoint"
          ? "BadAnswer"
          : "Refused",
    ...(issue.error === undefined ? {} : { error: issue.error })
  })
