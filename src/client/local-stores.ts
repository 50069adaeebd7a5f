import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Scope from "effect/Scope"
import { resolveDataDir } from "../config/data-dir.js"
import * as FileKeyStorage from "../layers/FileKeyStorage.js"
import * as FileTokenStore from "../layers/FileTokenStore.js"
import type { OAuthToken } from "../protocol/token.js"
import { KeyStorage } from "../services/KeyStorage.js"
import { TokenStore } from "../services/TokenStore.js"
import {
  type BucketStats,
  DEFAULT_BUCKET,
  type ProviderKeyStorageLike,
  type TokenStoreLike
} from "./store-types.js"

/**
 * The stores a program uses when no proxy is set (it runs on the host): the
 * same file store the proxy serves from, in the same data directory. Loaded
 * only by the factories, and only in that case.
 */
const runtimeFor = (dataDir: string) =>
  ManagedRuntime.make(Layer.merge(FileTokenStore.layer(dataDir), FileKeyStorage.layer(dataDir)))

type LocalRuntime = ReturnType<typeof runtimeFor>

const run = <A, E>(runtime: LocalRuntime, effect: Effect.Effect<A, E, TokenStore | KeyStorage>): Promise<A> =>
  runtime.runPromiseExit(effect).then((exit) => {
    if (Exit.isSuccess(exit)) return exit.value
    throw Cause.squash(exit.cause)
  })

export class LocalTokenStore implements TokenStoreLike {
  private readonly runtime: LocalRuntime
  private readonly held = new Map<string, Scope.CloseableScope>()

  constructor(dataDir: string = resolveDataDir(undefined)) {
    this.runtime = runtimeFor(dataDir)
  }

  private use<A, E>(f: (store: typeof TokenStore.Service) => Effect.Effect<A, E>): Promise<A> {
    return run(this.runtime, Effect.flatMap(TokenStore, f))
  }

  async getToken(provider: string, bucket?: string): Promise<OAuthToken | null> {
    const token = await this.use((s) => s.getLatest({ provider, bucket: bucket ?? DEFAULT_BUCKET }))
    return token ?? null
  }

  saveToken(provider: string, token: OAuthToken, bucket?: string): Promise<void> {
    const key = { provider, bucket: bucket ?? DEFAULT_BUCKET }
    return this.use((s) => Effect.scoped(Effect.zipRight(s.lock(key), s.save(key, token))))
  }

  removeToken(provider: string, bucket?: string): Promise<void> {
    const key = { provider, bucket: bucket ?? DEFAULT_BUCKET }
    return this.use((s) => Effect.scoped(Effect.zipRight(s.lock(key), s.remove(key))))
  }

  async listProviders(): Promise<Array<string>> {
    return [...(await this.use((s) => s.listProviders()))]
  }

  async listBuckets(provider: string): Promise<Array<string>> {
    return [...(await this.use((s) => s.listBuckets(provider)))]
  }

  async getBucketStats(provider: string, bucket?: string): Promise<BucketStats | null> {
    const name = bucket ?? DEFAULT_BUCKET
    return (await this.getToken(provider, name)) === null
      ? null
      : { bucket: name, requestCount: 0, percentage: 0 }
  }

  /** Takes the same provider:bucket lock the proxy uses, held until `releaseRefreshLock`. */
  async acquireRefreshLock(provider: string, options?: { readonly bucket?: string }): Promise<boolean> {
    const key = { provider, bucket: options?.bucket ?? DEFAULT_BUCKET }
    const id = `${key.provider}:${key.bucket}`
    if (this.held.has(id)) return false
    const scope = Effect.runSync(Scope.make())
    try {
      await this.use((s) => Scope.extend(s.lock(key), scope))
    } catch {
      await Effect.runPromise(Scope.close(scope, Exit.void))
      return false
    }
    this.held.set(id, scope)
    return true
  }

  async releaseRefreshLock(provider: string, bucket?: string): Promise<void> {
    const id = `${provider}:${bucket ?? DEFAULT_BUCKET}`
    const scope = this.held.get(id)
    if (scope === undefined) return
    this.held.delete(id)
    await Effect.runPromise(Scope.close(scope, Exit.void))
  }
}

export class LocalProviderKeyStorage implements ProviderKeyStorageLike {
  private readonly runtime: LocalRuntime

  constructor(dataDir: string = resolveDataDir(undefined)) {
    this.runtime = runtimeFor(dataDir)
  }

  private use<A, E>(f: (keys: typeof KeyStorage.Service) => Effect.Effect<A, E>): Promise<A> {
    return run(this.runtime, Effect.flatMap(KeyStorage, f))
  }

  async getKey(name: string): Promise<string | null> {
    return (await this.use((k) => k.get(name))) ?? null
  }

  hasKey(name: string): Promise<boolean> {
    return this.use((k) => k.has(name))
  }

  async listKeys(): Promise<Array<string>> {
    return [...(await this.use((k) => k.list()))]
  }

  saveKey(name: string, value: string): Promise<void> {
    return this.use((k) => k.set(name, value))
  }

  deleteKey(name: string): Promise<void> {
    return this.use((k) => k.remove(name))
  }
}
