/**
 * credproxy/client: what a program inside the sandbox imports. It loads no
 * server code and no native code; the local file store is loaded only when a
 * factory picks it (no `LLXPRT_CREDENTIAL_SOCKET`).
 */
export {
  CONNECTION_LOST_MESSAGE,
  ConnectionLost,
  LoginFailed,
  type ProxyClientError,
  ProxyResponseError,
  ProxyUnavailable,
  RequestTimeout
} from "./client/errors.js"
export { createProviderKeyStorage, createTokenStore } from "./client/factories.js"
export {
  CLIENT_IDLE_CLOSE,
  CLIENT_REQUEST_TIMEOUT,
  layer as proxyClientLayer,
  make as makeProxyClient,
  ProxyClient,
  type ProxyClientOptions,
  type ProxyClientShape
} from "./client/ProxyClient.js"
export {
  type LoginOptions,
  type LoginPrompt,
  login as proxyLogin,
  type PromiseLoginOptions,
  ProxyOAuthAdapter,
  refresh as proxyRefresh,
  type ServedToken
} from "./client/ProxyOAuthAdapter.js"
export { KEY_MANAGEMENT_UNAVAILABLE, ProxyProviderKeyStorage } from "./client/ProxyProviderKeyStorage.js"
export { ProxyTokenStore } from "./client/ProxyTokenStore.js"
export type {
  BucketStats,
  OAuthToken,
  ProviderKeyStorageLike,
  TokenStoreLike
} from "./client/store-types.js"
