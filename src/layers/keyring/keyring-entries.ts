import { createHash } from "node:crypto"
import * as Effect from "effect/Effect"
import { decodeName, encodeName } from "../../lib/name-encoding.js"
import type { TokenKey } from "../../services/TokenStore.js"
import { ABSENT, type Stamp, sameStamp } from "../store-cache/stamp.js"
import type { Look } from "../store-cache/store-cache.js"
import type { KeyringShape } from "./keyring-client.js"

/**
 * How credproxy's entries are named in the keyring (docs/PROTOCOL.md §21): under
 * the service KEYRING_SERVICE, one entry per token, account
 * `token:<provider>:<bucket>`, and one per API key, account `key:<name>`,
 * each name in the stores' reversible encoding (`lib/name-encoding.ts`: a
 * valid name is itself, and no encoded name holds a `:`).
 */

export const tokenAccount = (key: TokenKey): string =>
  `token:${encodeName(key.provider)}:${encodeName(key.bucket)}`

export const keyAccount = (name: string): string => `key:${encodeName(name)}`

/** A keyring entry's account as a token key or a key name; `undefined` for anything credproxy would not have named so. */
export const parseAccount = (
  account: string
):
  | { readonly _tag: "Token"; readonly key: TokenKey }
  | { readonly _tag: "Key"; readonly name: string }
  | undefined => {
  const [kind, first, second, ...rest] = account.split(":")
  if (rest.length > 0 || first === undefined) return undefined
  const provider = decodeName(first)
  if (kind === "key" && second === undefined)
    return provider === undefined ? undefined : { _tag: "Key", name: provider }
  if (kind !== "token" || second === undefined) return undefined
  const bucket = decodeName(second)
  return provider === undefined || bucket === undefined
    ? undefined
    : { _tag: "Token", key: { provider, bucket } }
}

/** The stamp of a stored value: its digest (the keyring has no metadata to compare) and size. */
export const valueStamp = (text: string): Stamp => ({
  _tag: "Value",
  digest: createHash("sha256").update(text).digest("base64"),
  size: Buffer.byteLength(text)
})

/**
 * A look at `account` for the store cache: the value is read every time (a
 * D-Bus round trip), and decoded again only when its digest changed.
 */
export const lookAt =
  (keyring: KeyringShape, account: string): Look =>
  (before) =>
    Effect.map(keyring.get(account, "get"), (text) => {
      if (text === undefined) return { _tag: "Stamp", stamp: ABSENT }
      const stamp = valueStamp(text)
      if (before !== undefined && sameStamp(before, stamp)) return { _tag: "Same" }
      return { _tag: "Read", stamp, text, bytes: stamp._tag === "Value" ? stamp.size : 0 }
    })

/** What the keyring's search holds: tokens by provider, and key names; sorted. */
export interface KeyringListing {
  readonly tokens: ReadonlyMap<string, ReadonlyArray<string>>
  readonly keys: ReadonlyArray<string>
}

export const listingOf = (accounts: ReadonlyArray<string>): KeyringListing => {
  const tokens = new Map<string, Array<string>>()
  const keys: Array<string> = []
  for (const account of accounts) {
    const entry = parseAccount(account)
    if (entry?._tag === "Key") keys.push(entry.name)
    else if (entry?._tag === "Token") {
      const buckets = tokens.get(entry.key.provider)
      if (buckets === undefined) tokens.set(entry.key.provider, [entry.key.bucket])
      else buckets.push(entry.key.bucket)
    }
  }
  for (const buckets of tokens.values()) buckets.sort()
  return { tokens, keys: keys.sort() }
}
