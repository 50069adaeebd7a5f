import * as fs from "node:fs"
import * as path from "node:path"
import { afterEach, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as FileTokenStore from "../src/layers/FileTokenStore.js"
import type { OAuthProvider } from "../src/services/OAuthProviders.js"
import type { TokenStoreShape } from "../src/services/TokenStore.js"
import { authServer, CONFIDENTIAL_SECRET, type TokenSet } from "./support/auth-server.js"
import { killAllChildren, makeWorkspace, runCli, startServe } from "./support/cli.js"
import { FrameClient, type Json } from "./support/frame-client.js"
import { startServer, type TestServer } from "./support/server.js"
import { poll } from "./support/until.js"

/**
 * Refresh against a real authorization server (`oidc-provider` on loopback,
 * refresh-token rotation on), in real time: tokens come from its
 * authorization code flow, the refresh goes through oauth4webapi, and the
 * server's own token-endpoint counter proves how many refreshes happened.
 */

afterEach(() => killAllChildren())

const open = (server: TestServer) => Effect.promise(() => FrameClient.open(server.socketPath))
const call = (client: FrameClient, op: string, payload?: Json) =>
  Effect.promise(() => client.request(op, payload))
const promise = <A>(f: () => Promise<A>) => Effect.promise(f)

const nowSeconds = () => Math.floor(Date.now() / 1000)

/** The token set as the host stores it (`expiry` absolute); `expiry` may be overridden to make it stale. */
const imported = (tokens: TokenSet, expiry = nowSeconds() + tokens.expires_in) => ({
  access_token: tokens.access_token,
  token_type: tokens.token_type,
  expiry,
  refresh_token: tokens.refresh_token,
  ...(tokens.scope === undefined ? {} : { scope: tokens.scope }),
  ...(tokens.id_token === undefined ? {} : { id_token: tokens.id_token })
})

const withStore = <A>(dataDir: string, use: (store: TokenStoreShape) => Effect.Effect<A, unknown>) =>
  Effect.scoped(Effect.flatMap(FileTokenStore.make(dataDir), use)).pipe(Effect.orDie)

const seed = (dataDir: string, provider: string, bucket: string, value: Json) =>
  withStore(dataDir, (store) => store.save({ provider, bucket }, value))

const stored = (dataDir: string, provider: string, bucket: string) =>
  withStore(dataDir, (store) => store.getLatest({ provider, bucket }))

describe("refresh against oidc-provider (real OAuth 2.0 server on loopback)", () => {
  it.scopedLive(
    "an expired token: refresh_token answers a new access token without a refresh token; the rotated one is stored",
    () =>
      Effect.gen(function* () {
        const auth = yield* authServer
        const provider: OAuthProvider = {
          name: "oidc",
          tokenEndpoint: auth.tokenEndpoint,
          clientId: "cli-short",
          scopes: ["openid", "offline_access"]
        }
        const server = yield* startServer({ providers: [provider] })
        const tokens = yield* promise(() => auth.login("cli-short"))
        expect(tokens.expires_in).toBe(2)
        yield* seed(server.dataDir, "oidc", "default", imported(tokens))

        // Let it expire for real: the provider itself refuses it afterwards.
        yield* promise(() =>
          poll(
            () => auth.userinfoStatus(tokens.access_token),
            (status) => status === 401,
            { limitMs: 10_000, intervalMs: 100, what: "the provider to refuse the expired token" }
          )
        )
        const before = auth.tokenRequests()
        const client = yield* open(server)
        const reply = yield* call(client, "refresh_token", { provider: "oidc" })
        expect(reply.ok).toBe(true)
        expect(reply.data.access_token).not.toBe(tokens.access_token)
        expect(reply.data).not.toHaveProperty("refresh_token")
        expect(reply.data.token_type).toBe(tokens.token_type)
        expect(reply.data.expiry).toBeGreaterThanOrEqual(nowSeconds())
        expect(auth.tokenRequests() - before).toBe(1)
        expect(yield* promise(() => auth.userinfoStatus(reply.data.access_token))).toBe(200)

        const after = yield* stored(server.dataDir, "oidc", "default")
        expect(after?.access_token).toBe(reply.data.access_token)
        expect(after?.refresh_token).toEqual(expect.any(String))
        expect(after?.refresh_token).not.toBe(tokens.refresh_token)

        // The refresh token that was rotated away is dead at the provider: invalid_grant, no retry, cleared.
        yield* seed(server.dataDir, "oidc", "replay", imported(tokens, nowSeconds() - 60))
        const replayBefore = auth.tokenRequests()
        expect(yield* call(client, "refresh_token", { provider: "oidc", bucket: "replay" })).toMatchObject({
          ok: false,
          code: "REAUTH_REQUIRED"
        })
        expect(auth.tokenRequests() - replayBefore).toBe(1)
        const cleared = yield* stored(server.dataDir, "oidc", "replay")
        expect(cleared).toMatchObject({ access_token: tokens.access_token })
        expect(cleared).not.toHaveProperty("refresh_token")
        client.close()
      })
  )

  it.scopedLive("a confidential client by issuer alone: metadata discovery and client_secret_post", () =>
    Effect.gen(function* () {
      const auth = yield* authServer
      const providers: Array<OAuthProvider> = [
        {
          name: "conf",
          issuer: auth.issuer,
          clientId: "conf",
          clientSecret: CONFIDENTIAL_SECRET,
          scopes: []
        },
        { name: "wrong", issuer: auth.issuer, clientId: "conf", clientSecret: "not-the-secret", scopes: [] }
      ]
      const server = yield* startServer({ providers })
      const client = yield* open(server)
      const tokens = yield* promise(() => auth.login("conf"))
      yield* seed(server.dataDir, "conf", "default", imported(tokens, nowSeconds() - 1))
      const reply = yield* call(client, "refresh_token", { provider: "conf" })
      expect(reply).toMatchObject({ ok: true })
      expect(reply.data.access_token).not.toBe(tokens.access_token)
      expect(yield* promise(() => auth.userinfoStatus(reply.data.access_token))).toBe(200)

      // A wrong client secret is a 401 (invalid_client): treated as a rejected refresh.
      const other = yield* promise(() => auth.login("conf", "bob"))
      yield* seed(server.dataDir, "wrong", "default", imported(other, nowSeconds() - 1))
      expect(yield* call(client, "refresh_token", { provider: "wrong" })).toMatchObject({
        ok: false,
        code: "REAUTH_REQUIRED"
      })
      expect(yield* stored(server.dataDir, "wrong", "default")).not.toHaveProperty("refresh_token")
      client.close()
    })
  )

  it.scopedLive(
    "two proxy processes sharing a data dir refresh one key concurrently: one upstream call",
    () =>
      Effect.gen(function* () {
        const auth = yield* authServer
        const workspace = makeWorkspace()
        yield* Effect.addFinalizer(() => Effect.sync(() => workspace.remove()))
        const providersFile = path.join(workspace.root, "providers.json")
        fs.writeFileSync(
          providersFile,
          JSON.stringify({ providers: { oidc: { tokenEndpoint: auth.tokenEndpoint, clientId: "cli" } } })
        )
        const cli = (args: ReadonlyArray<string>, stdin?: string) =>
          promise(() =>
            runCli(
              [
                ...args,
                "--data-dir",
                workspace.dataDir,
                ...(args[1] === "import" ? [] : ["--providers", providersFile])
              ],
              stdin === undefined ? {} : { stdin }
            )
          )
        const tokens = yield* promise(() => auth.login("cli"))
        const stale = JSON.stringify(imported(tokens, nowSeconds() - 1))
        expect((yield* cli(["token", "import", "oidc"], stale)).code).toBe(0)
        expect(yield* cli(["providers", "list"])).toMatchObject({ code: 0, stdout: "oidc\n" })

        const serveArgs = [
          "--data-dir",
          workspace.dataDir,
          "--providers",
          providersFile,
          "--socket-dir",
          workspace.socketDir
        ]
        const [one, two] = yield* promise(() => Promise.all([startServe(serveArgs), startServe(serveArgs)]))
        const clients = yield* promise(() =>
          Promise.all([FrameClient.open(one!.socketPath), FrameClient.open(two!.socketPath)])
        )
        // A slow token endpoint, so both requests are surely in flight together.
        auth.setTokenDelay(500)
        const before = auth.tokenRequests()
        const replies = yield* promise(() =>
          Promise.all(clients.map((client) => client.request("refresh_token", { provider: "oidc" })))
        )
        auth.setTokenDelay(0)
        expect(replies.map((reply) => reply.ok)).toEqual([true, true])
        expect(replies[1].data).toEqual(replies[0].data)
        expect(replies[0].data.access_token).not.toBe(tokens.access_token)
        expect(auth.tokenRequests() - before).toBe(1)
        for (const client of clients) client.close()

        // The host CLI goes through the same coordinator: the token is valid now, so no upstream call.
        const shown = yield* cli(["token", "refresh", "oidc"])
        expect(shown.code).toBe(0)
        expect(JSON.parse(shown.stdout)).toEqual(replies[0].data)
        expect(auth.tokenRequests() - before).toBe(1)

        // ... and refreshes an expired one, printing it without its refresh token.
        const second = yield* promise(() => auth.login("cli", "bob"))
        yield* cli(["token", "import", "oidc", "--bucket", "b2"], JSON.stringify(imported(second, 0)))
        const beforeCli = auth.tokenRequests()
        const refreshed = yield* cli(["token", "refresh", "oidc", "--bucket", "b2"])
        expect(refreshed.code).toBe(0)
        const printed = JSON.parse(refreshed.stdout)
        expect(printed.access_token).not.toBe(second.access_token)
        expect(printed).not.toHaveProperty("refresh_token")
        expect(refreshed.stdout).not.toContain(second.refresh_token)
        expect(auth.tokenRequests() - beforeCli).toBe(1)
        const rotated = yield* stored(workspace.dataDir, "oidc", "b2")
        expect(rotated?.refresh_token).not.toBe(second.refresh_token)

        for (const serve of [one!, two!]) expect((yield* promise(() => serve.stop())).code).toBe(0)
      })
  )
})
