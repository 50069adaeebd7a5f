/**
 * credproxy as a library, for a host program that embeds the proxy: the
 * scoped `serve` program, the Layers it runs on, and the services they
 * implement, so an embedder can swap any of them.
 */
export {
  HandlerDefect,
  InvalidRequest,
  NotFound,
  ProviderNotFound,
  RateLimited,
  ReauthRequired,
  RefreshCooldown,
  RefreshFailure,
  StoreFailure,
  StoreTimeout,
  Unauthorized
} from "./errors/errors.js"
export { ServerStartError } from "./errors/startup.js"
export { UsageError } from "./errors/usage.js"
export { toWireError, type WireError } from "./errors/wire-error.js"
export * as EffectAuditLog from "./layers/EffectAuditLog.js"
export * as FileKeyStorage from "./layers/FileKeyStorage.js"
export * as FileTokenStore from "./layers/FileTokenStore.js"
export * as MemoryKeyStorage from "./layers/MemoryKeyStorage.js"
export * as MemoryTokenStore from "./layers/MemoryTokenStore.js"
export * as OAuthTokenRefresher from "./layers/OAuthTokenRefresher.js"
export * as PeerVerifierNative from "./layers/PeerVerifierNative.js"
export * as ProvidersFile from "./layers/ProvidersFile.js"
export * as StderrLogger from "./layers/StderrLogger.js"
export { encodeFrame, FrameDecoder } from "./protocol/frame.js"
export { PROTOCOL_VERSION } from "./protocol/limits.js"
export { FailureResponse, Response, SuccessResponse } from "./protocol/responses.js"
export { mergeTokens, OAuthToken, sanitizeToken } from "./protocol/token.js"
export { WireCode } from "./protocol/wire-codes.js"
export { type RefreshLayerOptions, withRefresh } from "./server/refresh-layer.js"
export { type LoggingOptions, runServer } from "./server/run-server.js"
export { type ServeOptions, serverLayer } from "./server/ServeOptions.js"
export * as ServerConfig from "./server/ServerConfig.js"
export { type RunningServer, type ServerServices, serve } from "./server/serve.js"
export * as AccessPolicy from "./services/AccessPolicy.js"
export { AuditLog } from "./services/AuditLog.js"
export { KeyStorage } from "./services/KeyStorage.js"
export * as OAuthProviders from "./services/OAuthProviders.js"
export { PeerVerifier } from "./services/PeerVerifier.js"
export * as RateLimiter from "./services/RateLimiter.js"
export * as RefreshCoordinator from "./services/RefreshCoordinator.js"
export { type RefreshedToken, TokenRefresher } from "./services/TokenRefresher.js"
export * as TokenRenewal from "./services/TokenRenewal.js"
export { type TokenKey, TokenStore } from "./services/TokenStore.js"
export {
  type CredentialProxy,
  type CredentialProxyOptions,
  startCredentialProxy
} from "./start-credential-proxy.js"
