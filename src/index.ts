/**
 * credproxy as a library, for a host program that embeds the proxy:
 * `startCredentialProxy` for Promise-based programs; for Effect programs the
 * scoped `serve` program, the composition of its Layers (`serverLayer`,
 * whose parts can be swapped), the services they implement and the Layers.
 */

export { STORE_KINDS, type StoreKind } from "./config/store-kind.js"
export {
  Cancelled,
  Forbidden,
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
export {
  ExchangeFailed,
  LoginFailed,
  LoginSessionError,
  LoginSessionLimit,
  LoginStartFailed
} from "./errors/login-errors.js"
export { DataDirRefused, KeyringUnavailable, ServerStartError } from "./errors/startup.js"
export { UsageError } from "./errors/usage.js"
export { toWireError, type WireError } from "./errors/wire-error.js"
export * as AccessPolicyLive from "./layers/AccessPolicyLive.js"
export * as CapabilityGateLive from "./layers/CapabilityGateLive.js"
export * as EffectAuditLog from "./layers/EffectAuditLog.js"
export * as FileKeyStorage from "./layers/FileKeyStorage.js"
export * as FileTokenStore from "./layers/FileTokenStore.js"
export type { HostKeyStorage, HostTokenStore } from "./layers/HostStores.js"
export * as HostStores from "./layers/HostStores.js"
export * as KeyringKeyStorage from "./layers/KeyringKeyStorage.js"
export * as KeyringTokenStore from "./layers/KeyringTokenStore.js"
export * as KeyringClient from "./layers/keyring/keyring-client.js"
export * as LoginSessionsLive from "./layers/LoginSessionsLive.js"
export * as OAuthLoginClient from "./layers/OAuthLoginClient.js"
export * as OAuthTokenRefresher from "./layers/OAuthTokenRefresher.js"
export * as PeerVerifierNative from "./layers/PeerVerifierNative.js"
export * as ProvidersFile from "./layers/ProvidersFile.js"
export * as RateLimiterLive from "./layers/RateLimiterLive.js"
export * as RefreshCoordinatorLive from "./layers/RefreshCoordinatorLive.js"
export * as StderrLogger from "./layers/StderrLogger.js"
export * as StoreDeadline from "./layers/StoreDeadline.js"
export { type StoreLayers, storeLayers } from "./layers/StoreLayers.js"
export * as TokenQuotaLive from "./layers/TokenQuotaLive.js"
export * as TokenRenewalLive from "./layers/TokenRenewalLive.js"
export { encodeFrame, FrameDecoder } from "./protocol/frame.js"
export {
  MAX_FRAME_BYTES,
  MAX_FRAME_BYTES_V2,
  PROTOCOL_VERSION,
  PROTOCOL_VERSIONS
} from "./protocol/limits.js"
export { FailureResponse, Response, SuccessResponse } from "./protocol/responses.js"
export { mergeTokens, OAuthToken, sanitizeToken } from "./protocol/token.js"
export { WireCode } from "./protocol/wire-codes.js"
export { type LoggingOptions, runServer } from "./server/run-server.js"
export * as ServerConfig from "./server/ServerConfig.js"
export { type RunningServer, type ServerServices, serve } from "./server/serve.js"
export { type ServeOptions, type ServerParts, serverLayer } from "./server/server-layer.js"
export * as AccessPolicy from "./services/AccessPolicy.js"
export { AuditLog } from "./services/AuditLog.js"
export { CapabilityGate } from "./services/CapabilityGate.js"
export { KeyStorage } from "./services/KeyStorage.js"
export { LoginClient } from "./services/LoginClient.js"
export * as LoginSessions from "./services/LoginSessions.js"
export * as OAuthProviders from "./services/OAuthProviders.js"
export { PeerVerifier } from "./services/PeerVerifier.js"
export * as RateLimiter from "./services/RateLimiter.js"
export * as RefreshCoordinator from "./services/RefreshCoordinator.js"
export { TokenQuota } from "./services/TokenQuota.js"
export { type RefreshedToken, TokenRefresher } from "./services/TokenRefresher.js"
export * as TokenRenewal from "./services/TokenRenewal.js"
export { type TokenKey, TokenStore } from "./services/TokenStore.js"
export {
  type CredentialProxy,
  type CredentialProxyOptions,
  startCredentialProxy
} from "./start-credential-proxy.js"
