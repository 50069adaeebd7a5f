import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import type { EgressRoute } from "../../config/egress-routes.js"
import { type EgressError, EgressRefused } from "../../errors/egress.js"
import { NotFound } from "../../errors/errors.js"
import type { OAuthToken } from "../../protocol/token.js"
import type { AccessPolicyShape } from "../../services/AccessPolicy.js"
import type { KeyStorageShape } from "../../services/KeyStorage.js"
import { isValidAt, type RefreshCoordinatorShape } from "../../services/RefreshCoordinator.js"
import type { TokenStoreShape } from "../../services/TokenStore.js"

/** The credential a request goes out with; `token` when it is an access token (for the refresh after a 401). */
export interface Credential {
  readonly value: string
  readonly token?: OAuthToken
}

/**
 * A credential known at once (from the stores' memory: the usual case, no
 * fiber started), or the work that finds it (a store read, a refresh).
 */
export type Lookup = Either.Either<Credential, EgressError> | Effect.Effect<Credential, EgressError>

export interface EgressCredentialsDeps {
  readonly tokens: TokenStoreShape
  readonly keys: KeyStorageShape
  readonly policy: AccessPolicyShape
  readonly refresh: RefreshCoordinatorShape
  readonly nowMs: () => number
}

const ofToken = (token: OAuthToken): Credential => ({ value: token.access_token, token })

/**
 * The route's credential through the same services as the socket: the access
 * policy first, then the store; a token within 30 s of its expiry goes through
 * the refresh coordinator (§6) before it is used.
 */
export const makeEgressCredentials = (deps: EgressCredentialsDeps) => {
  const { tokens, keys, policy, refresh, nowMs } = deps

  const lookup = (route: EgressRoute): Lookup => {
    const credential = route.credential
    if (credential.kind === "apiKey") {
      if (!policy.allowsKey(credential.name)) return Either.left(new EgressRefused({ reason: "Policy" }))
      const known = keys.cached(credential.name)
      const found = (value: string | undefined): Either.Either<Credential, EgressError> =>
        value === undefined ? Either.left(new NotFound({ what: "api key" })) : Either.right({ value })
      if (Option.isSome(known)) return found(known.value)
      return Effect.flatMap(keys.get(credential.name), found)
    }
    const key = credential.key
    if (!policy.allowsToken(key.provider, key.bucket))
      return Either.left(new EgressRefused({ reason: "Policy" }))
    const known = tokens.cached(key)
    if (Option.isSome(known) && known.value === undefined) return Either.left(new NotFound({ what: "token" }))
    if (Option.isSome(known) && known.value !== undefined && isValidAt(known.value, nowMs())) {
      return Either.right(ofToken(known.value))
    }
    return Effect.flatMap(tokens.get(key), (token) => {
      if (token === undefined) return Effect.fail(new NotFound({ what: "token" }))
      if (isValidAt(token, nowMs())) return Effect.succeed(ofToken(token))
      return Effect.map(refresh.refresh(key), ofToken)
    })
  }

  /** After the upstream refused `used` (401): one refresh through the coordinator, unless someone renewed it meanwhile. */
  const renewAfterRefusal = (route: EgressRoute, used: OAuthToken): Effect.Effect<Credential, EgressError> =>
    route.credential.kind === "token"
      ? Effect.map(refresh.renew(route.credential.key, used.expiry), ofToken)
      : Effect.fail(new EgressRefused({ reason: "UpstreamUnreachable" }))

  return { lookup, renewAfterRefusal }
}

export type EgressCredentials = ReturnType<typeof makeEgressCredentials>
