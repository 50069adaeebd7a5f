import * as Schema from "effect/Schema"

/**
 * An OAuth token as stored (PROTOCOL.md §7). Provider-specific fields
 * (`account_id`, `id_token`, ...) pass through untouched via the index signature.
 */
const servedFields = {
  access_token: Schema.String.pipe(Schema.minLength(1, { message: () => "must be a non-empty string" })),
  expiry: Schema.Number.pipe(
    Schema.finite({ message: () => "must be a finite number (seconds since the epoch)" })
  ),
  token_type: Schema.String,
  scope: Schema.optional(Schema.NullOr(Schema.String))
}
const passthrough = Schema.Record({ key: Schema.String, value: Schema.Unknown })

export const OAuthToken = Schema.Struct(
  { ...servedFields, refresh_token: Schema.optional(Schema.String) },
  passthrough
).annotations({ identifier: "OAuthToken" })

export type OAuthToken = typeof OAuthToken.Type

/** A token as it may leave the host, as clients read it: the same fields without the refresh token. */
export const SanitizedToken = Schema.Struct(servedFields, passthrough).annotations({
  identifier: "SanitizedToken"
})

/** A token as it may leave the host: everything but the refresh token. */
export type SanitizedToken = Omit<OAuthToken, "refresh_token">

/** The one function that strips what never crosses the socket. Every way out uses it. */
export const sanitizeToken = (token: OAuthToken): SanitizedToken => {
  const { refresh_token: _dropped, ...rest } = token
  return rest
}

const sanitizedJsonCache = new WeakMap<OAuthToken, string>()

/**
 * The sanitized token as JSON, computed once per token object. Stores hand out
 * the same object until the token changes, so the hot path reuses the string.
 */
export const sanitizedTokenJson = (token: OAuthToken): string => {
  let json = sanitizedJsonCache.get(token)
  if (json === undefined) {
    json = JSON.stringify(sanitizeToken(token))
    sanitizedJsonCache.set(token, json)
  }
  return json
}

/** Merge stored ← incoming (§7): incoming fields win, but an absent or empty refresh token keeps the stored one. */
export const mergeTokens = (stored: OAuthToken | undefined, incoming: OAuthToken): OAuthToken => {
  if (stored === undefined) return incoming
  const merged: OAuthToken = { ...stored, ...incoming }
  if (incoming.refresh_token === undefined || incoming.refresh_token === "") {
    if (stored.refresh_token !== undefined) return { ...merged, refresh_token: stored.refresh_token }
    const { refresh_token: _empty, ...rest } = merged
    return rest as OAuthToken
  }
  return merged
}

/** Drops the refresh token of a token that came from the inner side (it may never set one). */
export const withoutRefreshToken = (token: OAuthToken): OAuthToken => sanitizeToken(token) as OAuthToken

/** The size of a token as stored: its JSON, in bytes (§22 limits it to MAX_STORED_TOKEN_BYTES). */
export const storedTokenBytes = (token: OAuthToken): number => Buffer.byteLength(JSON.stringify(token))
