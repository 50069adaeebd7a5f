import * as Either from "effect/Either"
import { UsageError } from "../errors/usage.js"

/**
 * Which store credproxy keeps credentials in (docs/PROTOCOL.md §21): `file`, the
 * files of the data directory (the default), or `keyring`, the OS keyring.
 */
export type StoreKind = "file" | "keyring"

export const STORE_KINDS: ReadonlyArray<StoreKind> = ["file", "keyring"]

const isStoreKind = (value: string): value is StoreKind =>
  (STORE_KINDS as ReadonlyArray<string>).includes(value)

/** `--store KIND`, else `$CREDPROXY_STORE` (empty counts as unset), else `file`; a bad value is a usage error. */
export const resolveStoreKind = (
  flag: StoreKind | undefined,
  env: NodeJS.ProcessEnv = process.env
): Either.Either<StoreKind, UsageError> => {
  if (flag !== undefined) return Either.right(flag)
  const fromEnv = env.CREDPROXY_STORE
  if (fromEnv === undefined || fromEnv === "") return Either.right("file")
  return isStoreKind(fromEnv)
    ? Either.right(fromEnv)
    : Either.left(new UsageError({ reason: "InvalidStore", subject: "CREDPROXY_STORE", detail: fromEnv }))
}
