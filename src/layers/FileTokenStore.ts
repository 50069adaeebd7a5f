import type { Dirent } from "node:fs"
import * as fsp from "node:fs/promises"
import * as path from "node:path"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import { errorCode, StoreFailure } from "../errors/errors.js"
import * as KeyedLock from "../lib/keyed-lock.js"
import { fieldIssueOf } from "../protocol/parse-issue.js"
import { OAuthToken } from "../protocol/token.js"
import { type TokenKey, TokenStore, type TokenStoreShape } from "../services/TokenStore.js"
import { ensureDir, writeFileAtomic } from "./file-store/atomic-file.js"
import { ABSENT, makeFileCache, stampOf } from "./file-store/file-cache.js"
import { lockFile } from "./file-store/file-lock.js"
import { decodeName, encodeName } from "./file-store/name-encoding.js"
import { openStoreDir } from "./file-store/store-dir.js"

/**
 * Tokens on disk, one JSON file per provider:bucket:
 * `${dataDir}/tokens/<enc(provider)>/<enc(bucket)>.json` (files 0600,
 * directories 0700). Reads come from a cache re-checked against the disk at
 * most every 500 ms, so the hot path is a map lookup; this process's writes
 * update the cache at once.
 */

const TOKEN_SUFFIX = ".json"

const decodeOAuthToken = Schema.decodeUnknownEither(OAuthToken)

/** A token file's contents; a failure names the invalid field only (values are secrets). */
const decodeToken = (text: string) =>
  Either.try({ try: (): unknown => JSON.parse(text), catch: () => undefined }).pipe(
    Either.flatMap((json) => Either.mapLeft(decodeOAuthToken(json), fieldIssueOf))
  )

/** A token file's bucket name, or `undefined` for anything else in the directory (temp files, lock dirs, strays). */
const bucketOfEntry = (entry: Dirent): string | undefined => {
  const name = entry.name
  if (!entry.isFile() || name.startsWith(".") || !name.endsWith(TOKEN_SUFFIX)) return undefined
  return decodeName(name.slice(0, -TOKEN_SUFFIX.length))
}

const readDirOrEmpty = async (dir: string): Promise<ReadonlyArray<Dirent>> => {
  try {
    return await fsp.readdir(dir, { withFileTypes: true })
  } catch (error) {
    const code = errorCode(error)
    if (code === "ENOENT" || code === "ENOTDIR") return []
    throw error
  }
}

const bucketsIn = async (dir: string): Promise<Array<string>> => {
  const buckets: Array<string> = []
  for (const entry of await readDirOrEmpty(dir)) {
    const bucket = bucketOfEntry(entry)
    if (bucket !== undefined) buckets.push(bucket)
  }
  return buckets.sort()
}

/** The store for `dataDir` (created 0700 if missing); the scope bounds the cache's life. */
export const make = (dataDir: string): Effect.Effect<TokenStoreShape, StoreFailure, Scope.Scope> =>
  Effect.gen(function* () {
    const tokensDir = yield* openStoreDir(dataDir, "tokens", 2)
    const cache = makeFileCache<OAuthToken>({ clock: yield* Effect.clock, decode: decodeToken })
    const locks = yield* KeyedLock.make
    yield* Effect.addFinalizer(() => Effect.sync(() => cache.clear()))

    const providerDir = (provider: string): string => path.join(tokensDir, encodeName(provider))
    const tokenFile = (key: TokenKey): string =>
      path.join(providerDir(key.provider), encodeName(key.bucket) + TOKEN_SUFFIX)

    const save = (key: TokenKey, token: OAuthToken): Effect.Effect<void, StoreFailure> =>
      Effect.suspend(() => {
        const file = tokenFile(key)
        const write = (data: string) =>
          ensureDir("save", path.dirname(file)).pipe(Effect.zipRight(writeFileAtomic("save", file, data)))
        return Effect.try({
          try: () => JSON.stringify(token, null, 2) + "\n",
          catch: () => new StoreFailure({ operation: "save", reason: "Unserializable" })
        }).pipe(
          Effect.flatMap((data) =>
            write(data).pipe(
              // The provider directory can vanish between mkdir and the write (a concurrent
              // `remove` deleting it once empty): one more try recreates it.
              Effect.catchIf(
                (error) => error.code === "ENOENT",
                () => write(data)
              )
            )
          ),
          Effect.map((stats) => cache.remember(KeyedLock.tokenKeyId(key), token, stampOf(stats)))
        )
      })

    const remove = (key: TokenKey): Effect.Effect<void, StoreFailure> =>
      Effect.tryPromise({
        try: async () => {
          const file = tokenFile(key)
          await fsp.unlink(file).catch((error: unknown) => {
            if (errorCode(error) !== "ENOENT") throw error
          })
          cache.remember(KeyedLock.tokenKeyId(key), undefined, ABSENT)
          // Tidy up an emptied provider directory; any error (ENOTEMPTY: a lock or another token) is fine.
          await fsp.rmdir(path.dirname(file)).catch(() => undefined)
        },
        catch: (cause) => StoreFailure.io("remove", cause)
      })

    const listProviders: Effect.Effect<ReadonlyArray<string>, StoreFailure> = Effect.tryPromise({
      try: async () => {
        const candidates = (await readDirOrEmpty(tokensDir)).flatMap((entry) => {
          if (!entry.isDirectory() || entry.name.startsWith(".")) return []
          const provider = decodeName(entry.name)
          return provider === undefined ? [] : [{ provider, dir: path.join(tokensDir, entry.name) }]
        })
        const withTokens = await Promise.all(
          candidates.map(async ({ provider, dir }) => ((await bucketsIn(dir)).length > 0 ? [provider] : []))
        )
        return withTokens.flat().sort()
      },
      catch: (cause) => StoreFailure.io("list", cause)
    })

    const listBuckets = (provider: string): Effect.Effect<ReadonlyArray<string>, StoreFailure> =>
      Effect.tryPromise({
        try: () => bucketsIn(providerDir(provider)),
        catch: (cause) => StoreFailure.io("list", cause)
      })

    /**
     * In-process permit first (so this process never races itself for the
     * file lock), then the file lock; released in reverse order when the
     * caller's scope closes. Both live in a child scope that is closed at once
     * if taking the lock fails, so a failed attempt holds nothing.
     */
    const lock = (key: TokenKey): Effect.Effect<void, StoreFailure, Scope.Scope> =>
      Effect.gen(function* () {
        const outer = yield* Effect.scope
        const inner = yield* Scope.fork(outer, ExecutionStrategy.sequential)
        const file = tokenFile(key)
        yield* locks.acquire(KeyedLock.tokenKeyId(key)).pipe(
          Effect.zipRight(ensureDir("lock", path.dirname(file))),
          Effect.zipRight(lockFile(file)),
          Scope.extend(inner),
          Effect.onExit((exit) => (Exit.isSuccess(exit) ? Effect.void : Scope.close(inner, exit)))
        )
      })

    return TokenStore.of({
      cached: (key) => cache.cached(KeyedLock.tokenKeyId(key)),
      get: (key) => cache.get(KeyedLock.tokenKeyId(key), () => tokenFile(key)),
      getLatest: (key) => Effect.suspend(() => cache.revalidate(KeyedLock.tokenKeyId(key), tokenFile(key))),
      save,
      remove,
      listProviders,
      listBuckets,
      lock
    })
  })

/** The file token store as a Layer; fails when `dataDir` cannot be created. */
export const layer = (dataDir: string): Layer.Layer<TokenStore, StoreFailure> =>
  Layer.scoped(TokenStore, make(dataDir))
