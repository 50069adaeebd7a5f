import type { Dirent } from "node:fs"
import * as fsp from "node:fs/promises"
import * as path from "node:path"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import { StoreFailure } from "../errors/errors.js"
import { OAuthToken } from "../protocol/token.js"
import { type TokenKey, TokenStore, type TokenStoreShape } from "../services/TokenStore.js"
import { ensureDir, errorCode, removeStaleTempFiles, writeFileAtomic } from "./atomic-file.js"
import { ABSENT, makeFileCache, stampOf } from "./file-cache.js"
import { lockFile } from "./file-lock.js"
import { makeKeyedSemaphore, tokenKeyId } from "./keyed-semaphore.js"
import { decodeName, encodeName } from "./name-encoding.js"

/**
 * Tokens on disk, one JSON file per provider:bucket:
 * `${dataDir}/tokens/<enc(provider)>/<enc(bucket)>.json` (files 0600,
 * directories 0700). Reads come from a cache re-checked against the disk at
 * most every STORE_REVALIDATE_MS, so the hot path is a map lookup; this
 * process's writes update the cache at once.
 */

const TOKEN_SUFFIX = ".json"

const decodeOAuthToken = Schema.decodeUnknownEither(OAuthToken)

/** Where an invalid token file fails, by field path only: messages could quote values, and values are secrets. */
const issuePaths = (error: ParseResult.ParseError): string => {
  const paths = ParseResult.ArrayFormatter.formatErrorSync(error).map((issue) =>
    issue.path.length === 0 ? "(root)" : issue.path.map(String).join(".")
  )
  return [...new Set(paths)].join(", ")
}

const decodeToken = (text: string): Either.Either<OAuthToken, Error> =>
  Either.try({
    try: (): unknown => JSON.parse(text),
    catch: () => new Error("token file is not valid JSON")
  }).pipe(
    Either.flatMap((json) =>
      Either.mapLeft(
        decodeOAuthToken(json),
        (error) => new Error(`token file does not hold a valid token (check: ${issuePaths(error)})`)
      )
    )
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

const withOperation =
  (operation: string) =>
  (error: StoreFailure): StoreFailure =>
    new StoreFailure({ operation, cause: error.cause })

/** The store for `dataDir` (created 0700 if missing); the scope bounds the cache's life. */
export const make = (dataDir: string): Effect.Effect<TokenStoreShape, StoreFailure, Scope.Scope> =>
  Effect.gen(function* () {
    const root = path.resolve(dataDir)
    const tokensDir = path.join(root, "tokens")
    yield* ensureDir(root).pipe(Effect.zipRight(ensureDir(tokensDir)), Effect.mapError(withOperation("open")))
    yield* removeStaleTempFiles(tokensDir, 2, yield* Clock.currentTimeMillis)

    const clock = yield* Effect.clock
    const cache = makeFileCache<OAuthToken>({ clock, decode: decodeToken })
    const locks = makeKeyedSemaphore()
    yield* Effect.addFinalizer(() => Effect.sync(() => cache.clear()))

    const providerDir = (provider: string): string => path.join(tokensDir, encodeName(provider))
    const tokenFile = (key: TokenKey): string =>
      path.join(providerDir(key.provider), encodeName(key.bucket) + TOKEN_SUFFIX)

    const get = (key: TokenKey): Effect.Effect<OAuthToken | undefined, StoreFailure> => {
      const id = tokenKeyId(key)
      const entry = cache.fresh(id)
      return entry !== undefined ? entry.exit : cache.revalidate(id, tokenFile(key), "get")
    }

    const getLatest = (key: TokenKey): Effect.Effect<OAuthToken | undefined, StoreFailure> =>
      Effect.suspend(() => cache.revalidate(tokenKeyId(key), tokenFile(key), "getLatest"))

    const save = (key: TokenKey, token: OAuthToken): Effect.Effect<void, StoreFailure> =>
      Effect.suspend(() => {
        const file = tokenFile(key)
        const write = (data: string) =>
          ensureDir(path.dirname(file)).pipe(Effect.zipRight(writeFileAtomic(file, data)))
        return Effect.try({
          try: () => JSON.stringify(token, null, 2) + "\n",
          catch: () => new StoreFailure({ operation: "save", cause: new Error("token is not serializable") })
        }).pipe(
          Effect.flatMap((data) =>
            write(data).pipe(
              // The provider directory can vanish between mkdir and the write (a concurrent
              // `remove` deleting it once empty): one more try recreates it.
              Effect.catchIf(
                (error) => errorCode(error.cause) === "ENOENT",
                () => write(data)
              )
            )
          ),
          Effect.map((stats) => cache.remember(tokenKeyId(key), token, stampOf(stats))),
          Effect.mapError(withOperation("save"))
        )
      })

    const remove = (key: TokenKey): Effect.Effect<void, StoreFailure> =>
      Effect.tryPromise({
        try: async () => {
          const file = tokenFile(key)
          await fsp.unlink(file).catch((error: unknown) => {
            if (errorCode(error) !== "ENOENT") throw error
          })
          cache.remember(tokenKeyId(key), undefined, ABSENT)
          // Tidy up an emptied provider directory; any error (ENOTEMPTY: a lock or another token) is fine.
          await fsp.rmdir(path.dirname(file)).catch(() => undefined)
        },
        catch: (cause) => new StoreFailure({ operation: "remove", cause })
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
      catch: (cause) => new StoreFailure({ operation: "listProviders", cause })
    })

    const listBuckets = (provider: string): Effect.Effect<ReadonlyArray<string>, StoreFailure> =>
      Effect.tryPromise({
        try: () => bucketsIn(providerDir(provider)),
        catch: (cause) => new StoreFailure({ operation: "listBuckets", cause })
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
        yield* locks.acquire(tokenKeyId(key)).pipe(
          Effect.zipRight(ensureDir(path.dirname(file)).pipe(Effect.mapError(withOperation("lock")))),
          Effect.zipRight(lockFile(file)),
          Scope.extend(inner),
          Effect.onExit((exit) => (Exit.isSuccess(exit) ? Effect.void : Scope.close(inner, exit)))
        )
      })

    return TokenStore.of({ get, getLatest, save, remove, listProviders, listBuckets, lock })
  })

/** The file token store as a Layer; fails when `dataDir` cannot be created. */
export const layer = (dataDir: string): Layer.Layer<TokenStore, StoreFailure> =>
  Layer.scoped(TokenStore, make(dataDir))
