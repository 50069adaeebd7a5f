import type { OAuthToken } from "../protocol/token.js"
import { WireCode } from "../protocol/wire-codes.js"
import { ProxyResponseError } from "./errors.js"
import type { ProxyClientOptions } from "./ProxyClient.js"
import { PromiseRunner } from "./promise-runner.js"
import { type BucketStats, DEFAULT_BUCKET, type TokenStoreLike } from "./store-types.js"

const isNotFound = (error: unknown): boolean =>
  error instanceof ProxyResponseError && error.code === WireCode.NOT_FOUND

/** Resolves NOT_FOUND to `fallback`; every other failure stays an error carrying its wire code. */
const orWhenNotFound = <A, B>(promise: Promise<A>, fallback: B): Promise<A | B> =>
  promise.catch((error: unknown) => {
    if (isNotFound(error)) return fallback
    throw error
  })

/**
 * The token store for a program inside the sandbox: every call goes to the
 * host proxy over `LLXPRT_CREDENTIAL_SOCKET`. Tokens come back without their
 * refresh token; refreshing is the host's job, so the refresh lock is a no-op.
 */
export class ProxyTokenStore implements TokenStoreLike {
  private readonly runner: PromiseRunner

  constructor(options: ProxyClientOptions | { readonly runner: PromiseRunner } = {}) {
    this.runner = "runner" in options ? options.runner : new PromiseRunner(options)
  }

  async getToken(provider: string, bucket?: string): Promise<OAuthToken | null> {
    return orWhenNotFound(this.runner.call("get_token", { provider, bucket: bucket ?? DEFAULT_BUCKET }), null)
  }

  async saveToken(provider: string, token: OAuthToken, bucket?: string): Promise<void> {
    await this.runner.call("save_token", { provider, bucket: bucket ?? DEFAULT_BUCKET, token })
  }

  async removeToken(provider: string, bucket?: string): Promise<void> {
    await orWhenNotFound(
      this.runner.call("remove_token", { provider, bucket: bucket ?? DEFAULT_BUCKET }),
      undefined
    )
  }

  async listProviders(): Promise<Array<string>> {
    return [...(await this.runner.call("list_providers", {})).providers]
  }

  async listBuckets(provider: string): Promise<Array<string>> {
    return [...(await this.runner.call("list_buckets", { provider })).buckets]
  }

  async getBucketStats(provider: string, bucket?: string): Promise<BucketStats | null> {
    const name = bucket ?? DEFAULT_BUCKET
    const token = await this.getToken(provider, name)
    return token === null ? null : { bucket: name, requestCount: 0, percentage: 0 }
  }

  /** The host coordinates refreshes; the sandbox never refreshes, so its lock always succeeds. */
  async acquireRefreshLock(_provider: string, _options?: { readonly bucket?: string }): Promise<boolean> {
    return true
  }

  async releaseRefreshLock(_provider: string, _bucket?: string): Promise<void> {}

  /** Closes the connection to the proxy. */
  dispose(): Promise<void> {
    return this.runner.dispose()
  }
}
