import { WireCode } from "../protocol/wire-codes.js"
import { ProxyResponseError } from "./errors.js"
import type { ProxyClientOptions } from "./ProxyClient.js"
import { PromiseRunner } from "./promise-runner.js"
import type { ProviderKeyStorageLike } from "./store-types.js"

export const KEY_MANAGEMENT_UNAVAILABLE =
  "API key management is not available in sandbox mode. Manage keys on the host."

/** API keys for a program inside the sandbox: read-only, through the host proxy. */
export class ProxyProviderKeyStorage implements ProviderKeyStorageLike {
  private readonly runner: PromiseRunner

  constructor(options: ProxyClientOptions | { readonly runner: PromiseRunner } = {}) {
    this.runner = "runner" in options ? options.runner : new PromiseRunner(options)
  }

  async getKey(name: string): Promise<string | null> {
    try {
      return (await this.runner.call("get_api_key", { name })).key
    } catch (error) {
      if (error instanceof ProxyResponseError && error.code === WireCode.NOT_FOUND) return null
      throw error
    }
  }

  async hasKey(name: string): Promise<boolean> {
    return (await this.runner.call("has_api_key", { name })).exists
  }

  async listKeys(): Promise<Array<string>> {
    return [...(await this.runner.call("list_api_keys", {})).keys]
  }

  async saveKey(_name: string, _value: string): Promise<void> {
    throw new Error(KEY_MANAGEMENT_UNAVAILABLE)
  }

  async deleteKey(_name: string): Promise<void> {
    throw new Error(KEY_MANAGEMENT_UNAVAILABLE)
  }

  dispose(): Promise<void> {
    return this.runner.dispose()
  }
}
