// Embedding on a host program's own stores (PROTOCOL.md §15), the way a host
// program that is not written with Effect does it: plain JavaScript, the
// built library (dist/, what `import "credproxy"` loads), Promise-based
// in-memory stores, a real Unix socket. No Effect import here.
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { ProxyTokenStore } from "../dist/client.js"
import { startCredentialProxy } from "../dist/index.js"
import { FrameClient } from "./support/frame-client.ts"

const keyOf = (provider, bucket) => `${provider}:${bucket ?? "(default)"}`

/** A host program's token store in a Map; every call is recorded with its arguments. */
const memoryTokenStore = () => {
  const tokens = new Map()
  const calls = []
  return {
    tokens,
    calls,
    store: {
      async getToken(provider, bucket) {
        calls.push(["getToken", provider, bucket])
        return tokens.get(keyOf(provider, bucket)) ?? null
      },
      async saveToken(provider, token, bucket) {
        calls.push(["saveToken", provider, bucket])
        tokens.set(keyOf(provider, bucket), structuredClone(token))
      },
      async removeToken(provider, bucket) {
        calls.push(["removeToken", provider, bucket])
        tokens.delete(keyOf(provider, bucket))
      },
      async listProviders() {
        return [...new Set([...tokens.keys()].map((key) => key.split(":")[0]))]
      },
      async listBuckets(provider) {
        return [...tokens.keys()]
          .filter((key) => key.startsWith(`${provider}:`))
          .map((key) => key.split(":")[1])
          .map((bucket) => (bucket === "(default)" ? "default" : bucket))
      },
      async getBucketStats(provider, bucket) {
        return provider === "anthropic" && bucket === "default"
          ? { requestCount: 42, percentage: 12.5 }
          : null
      }
    }
  }
}

const memoryKeyStorage = (keys) => ({
  async getKey(name) {
    return keys[name] ?? null
  },
  async listKeys() {
    return Object.keys(keys)
  },
  async hasKey(name) {
    return name in keys
  }
})

const started = []
afterEach(async () => {
  for (const { proxy, dir, clients } of started.splice(0)) {
    for (const client of clients) client.close()
    await proxy.stop()
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

/** Starts the proxy on `stores` in a fresh private directory; stopped after the test. */
const start = async (stores) => {
  const dir = fs.mkdtempSync(path.join(fs.realpathSync(os.tmpdir()), "cp-embed-"))
  const proxy = await startCredentialProxy({
    dataDir: path.join(dir, "data"),
    socketDir: path.join(dir, "sock"),
    logLevel: "error",
    ...stores
  })
  const clients = []
  started.push({ proxy, dir, clients })
  const open = async () => {
    const client = await FrameClient.open(proxy.socketPath)
    clients.push(client)
    return client
  }
  return { proxy, open }
}

const hostToken = {
  access_token: "at-host",
  expiry: 2_000_000_000,
  token_type: "Bearer",
  refresh_token: "rt-host",
  account_id: "acct-1"
}

describe("startCredentialProxy on a host program's own Promise stores (§15)", () => {
  it("serves the host's tokens and keys; save_token from the socket reaches it with its refresh token kept", async () => {
    const host = memoryTokenStore()
    host.tokens.set(keyOf("anthropic", undefined), { ...hostToken })
    const { proxy, open } = await start({
      tokenStore: host.store,
      keyStorage: memoryKeyStorage({ openai: "sk-openai" })
    })
    const client = await open()

    expect((await client.request("get_token", { provider: "anthropic" })).data).toEqual({
      access_token: "at-host",
      expiry: 2_000_000_000,
      token_type: "Bearer",
      account_id: "acct-1"
    })
    // The default bucket reaches the host as `undefined`.
    expect(host.calls).toContainEqual(["getToken", "anthropic", undefined])

    const saved = await client.request("save_token", {
      provider: "anthropic",
      token: {
        access_token: "at-sandbox",
        expiry: 2_100_000_000,
        token_type: "Bearer",
        refresh_token: "evil"
      }
    })
    expect(saved).toMatchObject({ ok: true, data: {} })
    expect(host.tokens.get(keyOf("anthropic", undefined))).toEqual({
      access_token: "at-sandbox",
      expiry: 2_100_000_000,
      token_type: "Bearer",
      refresh_token: "rt-host",
      account_id: "acct-1"
    })
    expect((await client.request("get_token", { provider: "anthropic" })).data.access_token).toBe(
      "at-sandbox"
    )

    await client.request("save_token", {
      provider: "gemini",
      bucket: "work",
      token: { access_token: "at-g", expiry: 2_000_000_000, token_type: "Bearer" }
    })
    expect(host.calls).toContainEqual(["saveToken", "gemini", "work"])
    expect((await client.request("list_providers")).data).toEqual({ providers: ["anthropic", "gemini"] })
    expect((await client.request("list_buckets", { provider: "gemini" })).data).toEqual({ buckets: ["work"] })
    expect((await client.request("get_bucket_stats", { provider: "anthropic" })).data).toEqual({
      bucket: "default",
      requestCount: 42,
      percentage: 12.5
    })
    expect((await client.request("remove_token", { provider: "gemini", bucket: "work" })).ok).toBe(true)
    expect(host.tokens.has(keyOf("gemini", "work"))).toBe(false)

    expect((await client.request("get_api_key", { name: "openai" })).data).toEqual({ key: "sk-openai" })
    expect((await client.request("has_api_key", { name: "nope" })).data).toEqual({ exists: false })
    expect((await client.request("list_api_keys")).data).toEqual({ keys: ["openai"] })

    // The sandbox's own client library sees the same thing.
    const sandbox = new ProxyTokenStore({ socketPath: proxy.socketPath })
    expect((await sandbox.getToken("anthropic")).access_token).toBe("at-sandbox")
  })

  it("a provider the host lists without buckets holds the default one, for listings under a policy", async () => {
    const host = memoryTokenStore()
    host.tokens.set(keyOf("anthropic", undefined), { ...hostToken })
    host.tokens.set(keyOf("gemini", "work"), { ...hostToken })
    // Like a store that names only the buckets it was given explicitly.
    host.store.listBuckets = async (provider) => (provider === "gemini" ? ["work"] : [])
    const { open } = await start({ tokenStore: host.store, allow: ["anthropic:default", "gemini:home"] })
    const client = await open()
    expect((await client.request("list_providers")).data).toEqual({ providers: ["anthropic"] })
  })

  it("a host store that throws answers INTERNAL_ERROR without its message; the proxy carries on", async () => {
    const host = memoryTokenStore()
    host.store.getToken = async (provider) => {
      if (provider === "broken") throw new Error("secret detail from /home/someone/.keyring")
      return null
    }
    host.store.listProviders = () => {
      throw new TypeError("synchronous throw")
    }
    const { open } = await start({ tokenStore: host.store })
    const client = await open()
    const reply = await client.request("get_token", { provider: "broken" })
    expect(reply).toMatchObject({ ok: false, code: "INTERNAL_ERROR" })
    expect(JSON.stringify(reply)).not.toMatch(/secret|keyring|home|Error/)
    // A list answers an empty list on a store error (§6).
    expect((await client.request("list_providers")).data).toEqual({ providers: [] })
    expect(await client.request("get_token", { provider: "fine" })).toMatchObject({
      ok: false,
      code: "NOT_FOUND"
    })
  })

  it("a host store that never answers gives INTERNAL_ERROR at the 15 s store deadline; others are served meanwhile", async () => {
    const host = memoryTokenStore()
    host.tokens.set(keyOf("ok", undefined), { ...hostToken })
    const original = host.store.getToken
    host.store.getToken = (provider, bucket) =>
      provider === "hangs" ? new Promise(() => {}) : original(provider, bucket)
    const { open } = await start({ tokenStore: host.store })
    const client = await open()
    const began = Date.now()
    client.send({ v: 1, id: "hangs", op: "get_token", payload: { provider: "hangs" } })
    expect((await client.request("get_token", { provider: "ok" })).ok).toBe(true)
    const reply = await client.frameWhere((frame) => frame.id === "hangs", 25_000)
    const waited = Date.now() - began
    expect(reply).toMatchObject({ ok: false, code: "INTERNAL_ERROR" })
    // Real time (the library runs on the real clock): the deadline, with a generous margin after it.
    expect(waited).toBeGreaterThanOrEqual(14_500)
    expect(waited).toBeLessThan(25_000)
  }, 40_000)
})
