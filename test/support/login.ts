import * as fs from "node:fs"
import * as path from "node:path"
import * as Effect from "effect/Effect"
import { expect } from "vitest"
import * as FileTokenStore from "../../src/layers/FileTokenStore.js"
import type { OAuthToken } from "../../src/protocol/token.js"
import type { LoginSettings, OAuthProvider } from "../../src/services/OAuthProviders.js"
import type { TokenStoreShape } from "../../src/services/TokenStore.js"
import type { AuthServer } from "./auth-server.js"
import { runCli } from "./cli.js"
import { FrameClient, type Json } from "./frame-client.js"
import type { TestServer } from "./server.js"

/** Helpers of the login tests (PROTOCOL.md §17) against the test authorization server. */

/** A version-2 connection presenting `token` as its capability token (none: no token), closed with the scope. */
export const connect = (server: TestServer, token?: string) =>
  Effect.acquireRelease(
    Effect.promise(() =>
      FrameClient.open(server.socketPath, {
        minVersion: 1,
        maxVersion: 2,
        ...(token === undefined ? {} : { capabilityToken: token })
      })
    ),
    (client) => Effect.sync(() => client.close())
  )

/** One request on `client`, its answer as the client got it. */
export const call = (client: FrameClient, op: string, payload: Json) =>
  Effect.promise(() => client.request(op, payload))

export const LOGIN_SCOPES = ["openid", "offline_access"]

/**
 * The test server's `login` client as a provider found by its issuer. Its
 * consent page only grants `offline_access` (a refresh token) when the
 * authorization request asks for consent: the providers file says so with
 * `authorizationParams`.
 */
export const loginProvider = (auth: AuthServer, login: LoginSettings = {}, name = "oidc"): OAuthProvider => ({
  name,
  issuer: auth.issuer,
  clientId: "login",
  scopes: LOGIN_SCOPES,
  login: { authorizationParams: { prompt: "consent" }, ...login }
})

/** The same provider as a providers file entry. */
export const providersFileFor = (file: string, providers: ReadonlyArray<OAuthProvider>): string => {
  const entries = Object.fromEntries(providers.map(({ name, ...entry }) => [name, entry]))
  fs.writeFileSync(file, JSON.stringify({ providers: entries }), { mode: 0o600 })
  return file
}

export const withTokenStore = <A>(
  dataDir: string,
  use: (store: TokenStoreShape) => Effect.Effect<A, unknown>
) => Effect.scoped(Effect.flatMap(FileTokenStore.make(dataDir), use)).pipe(Effect.orDie)

/** The token stored for provider:bucket, refresh token included. */
export const storedToken = (dataDir: string, provider: string, bucket = "default") =>
  withTokenStore(dataDir, (store) => store.getLatest({ provider, bucket }))

/**
 * `credproxy token refresh` on the host with the refresh token a login
 * stored: the stored token is made stale (its expiry moved into the past,
 * nothing else changed), then the CLI must call the provider once, print a
 * new access token without a refresh token, and store a rotated refresh token.
 */
export const refreshesOnHost = (
  dataDir: string,
  auth: AuthServer,
  provider: OAuthProvider,
  bucket = "default"
) =>
  Effect.gen(function* () {
    const before = (yield* storedToken(dataDir, provider.name, bucket)) as OAuthToken
    expect(before.refresh_token).toEqual(expect.any(String))
    yield* withTokenStore(dataDir, (store) =>
      store.save(
        { provider: provider.name, bucket },
        { ...before, expiry: Math.floor(Date.now() / 1000) - 60 }
      )
    )
    const file = providersFileFor(path.join(path.dirname(dataDir), `providers-${provider.name}.json`), [
      provider
    ])
    const requests = auth.tokenRequests()
    const result = yield* Effect.promise(() =>
      runCli([
        "token",
        "refresh",
        provider.name,
        "--bucket",
        bucket,
        "--data-dir",
        dataDir,
        "--providers",
        file
      ])
    )
    expect({ code: result.code, stderr: result.stderr }).toMatchObject({ code: 0 })
    const printed = JSON.parse(result.stdout) as OAuthToken
    expect(printed.access_token).not.toBe(before.access_token)
    expect(printed).not.toHaveProperty("refresh_token")
    expect(auth.tokenRequests() - requests).toBe(1)
    expect(yield* Effect.promise(() => auth.userinfoStatus(printed.access_token))).toBe(200)
    const after = (yield* storedToken(dataDir, provider.name, bucket)) as OAuthToken
    expect(after.refresh_token).toEqual(expect.any(String))
    expect(after.refresh_token).not.toBe(before.refresh_token)
  })
