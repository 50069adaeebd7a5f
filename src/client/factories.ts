import { ProxyProviderKeyStorage } from "./ProxyProviderKeyStorage.js"
import { ProxyTokenStore } from "./ProxyTokenStore.js"
import { PromiseRunner } from "./promise-runner.js"
import type { OAuthToken, ProviderKeyStorageLike, TokenStoreLike } from "./store-types.js"

let sharedRunner: PromiseRunner | undefined
let tokenStore: TokenStoreLike | undefined
let keyStorage: ProviderKeyStorageLike | undefined

const proxySocket = (): string | undefined => {
  const socket = process.env.LLXPRT_CREDENTIAL_SOCKET
  return socket === undefined || socket === "" ? undefined : socket
}

/** One connection per process, shared by both proxy stores. */
const runner = (): PromiseRunner => {
  sharedRunner ??= new PromiseRunner({})
  return sharedRunner
}

type LocalStores = typeof import("./local-stores.js")
let local: Promise<LocalStores> | undefined
/** The file store is loaded only when a factory chooses it. */
const localStores = (): Promise<LocalStores> => {
  local ??= import("./local-stores.js")
  return local
}

/** The local token store, loaded on first use (the file store stays unloaded in the sandbox). */
class LazyLocalTokenStore implements TokenStoreLike {
  private store: Promise<TokenStoreLike> | undefined
  private get impl(): Promise<TokenStoreLike> {
    this.store ??= localStores().then((m) => new m.LocalTokenStore())
    return this.store
  }
  async saveToken(provider: string, token: OAuthToken, bucket?: string) {
    return (await this.impl).saveToken(provider, token, bucket)
  }
  async getToken(provider: string, bucket?: string) {
    return (await this.impl).getToken(provider, bucket)
  }
  async removeToken(provider: string, bucket?: string) {
    return (await this.impl).removeToken(provider, bucket)
  }
  async listProviders() {
    return (await this.impl).listProviders()
  }
  async listBuckets(provider: string) {
    return (await this.impl).listBuckets(provider)
  }
  async getBucketStats(provider: string, bucket?: string) {
    return (await this.impl).getBucketStats(provider, bucket)
  }
  async acquireRefreshLock(
    provider: string,
    options?: { readonly bucket?: string; readonly waitMs?: number }
  ) {
    return (await this.impl).acquireRefreshLock(provider, options)
  }
  async releaseRefreshLock(provider: string, bucket?: string) {
    return (await this.impl).releaseRefreshLock(provider, bucket)
  }
}

/** The local API key storage, loaded on first use. */
class LazyLocalProviderKeyStorage implements ProviderKeyStorageLike {
  private storage: Promise<ProviderKeyStorageLike> | undefined
  private get impl(): Promise<ProviderKeyStorageLike> {
    this.storage ??= localStores().then((m) => new m.LocalProviderKeyStorage())
    return this.storage
  }
  async saveKey(name: string, value: string) {
    return (await this.impl).saveKey(name, value)
  }
  async getKey(name: string) {
    return (await this.impl).getKey(name)
  }
  async deleteKey(name: string) {
    return (await this.impl).deleteKey(name)
  }
  async listKeys() {
    return (await this.impl).listKeys()
  }
  async hasKey(name: string) {
    return (await this.impl).hasKey(name)
  }
}

/**
 * The process's token store: the proxy's when `LLXPRT_CREDENTIAL_SOCKET` is
 * set (inside the sandbox), else the local file store. One shared instance.
 */
export const createTokenStore = (): TokenStoreLike => {
  if (tokenStore === undefined) {
    tokenStore =
      proxySocket() !== undefined ? new ProxyTokenStore({ runner: runner() }) : new LazyLocalTokenStore()
  }
  return tokenStore
}

/** The process's API key storage, chosen like `createTokenStore`. One shared instance. */
export const createProviderKeyStorage = (): ProviderKeyStorageLike => {
  if (keyStorage === undefined) {
    keyStorage =
      proxySocket() !== undefined
        ? new ProxyProviderKeyStorage({ runner: runner() })
        : new LazyLocalProviderKeyStorage()
  }
  return keyStorage
}

export type { OAuthToken }
