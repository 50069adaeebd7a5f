import type { OAuthToken } from "../protocol/token.js"

export type { OAuthToken }

/** Usage figures of a bucket; the proxy has none to offer, so counts are 0. */
export interface BucketStats {
  readonly bucket: string
  readonly requestCount: number
  readonly percentage: number
  readonly lastUsed?: number
}

/** The token store interface an inner CLI programs against, whichever store backs it. */
export interface TokenStoreLike {
  saveToken(provider: string, token: OAuthToken, bucket?: string): Promise<void>
  getToken(provider: string, bucket?: string): Promise<OAuthToken | null>
  removeToken(provider: string, bucket?: string): Promise<void>
  listProviders(): Promise<Array<string>>
  listBuckets(provider: string): Promise<Array<string>>
  getBucketStats(provider: string, bucket?: string): Promise<BucketStats | null>
  acquireRefreshLock(
    provider: string,
    options?: { readonly bucket?: string; readonly waitMs?: number }
  ): Promise<boolean>
  releaseRefreshLock(provider: string, bucket?: string): Promise<void>
}

/** The API key storage interface an inner CLI programs against. */
export interface ProviderKeyStorageLike {
  saveKey(name: string, value: string): Promise<void>
  getKey(name: string): Promise<string | null>
  deleteKey(name: string): Promise<void>
  listKeys(): Promise<Array<string>>
  hasKey(name: string): Promise<boolean>
}

export const DEFAULT_BUCKET = "default"
