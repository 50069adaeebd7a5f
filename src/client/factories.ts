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

/** Defers every call until the lazily loaded implementation is there. */
const lazily = <T extends object>(load: () => Promise<T>): T =>
  new Proxy({} as T, {
    get:
      (_target, property) =>
      (...args: Array<unknown>) =>
        load().then((impl) =>
          (impl[property as keyof T] as (...a: Array<unknown>) => unknown).apply(impl, args)
        )
  })

/**
 * The process's token store: the proxy's when `LLXPRT_CREDENTIAL_SOCKET` is
 * set (inside the sandbox), else the local file store. One shared instance.
 */
export const createTokenStore = (): TokenStoreLike => {
  if (tokenStore === undefined) {
    tokenStore =
      proxySocket() !== undefined
        ? new ProxyTokenStore({ runner: runner() })
        : lazily<TokenStoreLike>(() => localStores().then((m) => new m.LocalTokenStore()))
  }
  return tokenStore
}

/** The process's API key storage, chosen like `createTokenStore`. One shared instance. */
export const createProviderKeyStorage = (): ProviderKeyStorageLike => {
  if (keyStorage === undefined) {
    keyStorage =
      proxySocket() !== undefined
        ? new ProxyProviderKeyStorage({ runner: runner() })
        : lazily<ProviderKeyStorageLike>(() => localStores().then((m) => new m.LocalProviderKeyStorage()))
  }
  return keyStorage
}

export type { OAuthToken }
