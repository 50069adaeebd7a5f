import * as fs from "node:fs"
import * as path from "node:path"
import { afterEach, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import { load, parseProviders } from "../src/config/providers-file.js"
import { killAllChildren, makeWorkspace, runCli } from "./support/cli.js"
import { tempDir } from "./support/server.js"

/** The providers file (PROTOCOL.md §16): schema, loopback rule, names, and how `serve` refuses a bad one. */

afterEach(() => killAllChildren())

const problem = (json: unknown) =>
  Either.getLeft(parseProviders(json)).pipe((o) => (o._tag === "Some" ? o.value : ""))

describe("providers file", () => {
  it("accepts https endpoints, http on loopback hosts, and an issuer instead of a token endpoint", () => {
    const parsed = parseProviders({
      providers: {
        anthropic: {
          tokenEndpoint: "https://auth.example.com/oauth/token",
          clientId: "public-client",
          scopes: ["openid", "offline_access"],
          authorizationEndpoint: "https://auth.example.com/authorize",
          deviceAuthorizationEndpoint: "https://auth.example.com/device"
        },
        local4: { tokenEndpoint: "http://127.0.0.1:8080/token", clientId: "c", clientSecret: "s" },
        local6: { tokenEndpoint: "http://[::1]:8080/token", clientId: "c" },
        localname: { tokenEndpoint: "http://localhost/token", clientId: "c" },
        discovered: { issuer: "https://issuer.example.com", clientId: "c" }
      }
    })
    expect(Either.isRight(parsed)).toBe(true)
    const providers = Either.getOrThrow(parsed)
    expect(providers.map((p) => p.name)).toEqual(["anthropic", "local4", "local6", "localname", "discovered"])
    expect(providers[0]).toEqual({
      name: "anthropic",
      tokenEndpoint: "https://auth.example.com/oauth/token",
      clientId: "public-client",
      scopes: ["openid", "offline_access"],
      authorizationEndpoint: "https://auth.example.com/authorize",
      deviceAuthorizationEndpoint: "https://auth.example.com/device"
    })
    expect(providers[1]).toMatchObject({ clientSecret: "s", scopes: [] })
  })

  it("names the provider and the field of every problem, never a value", () => {
    const cases: ReadonlyArray<[unknown, string]> = [
      [[], "must hold a JSON object"],
      [{}, 'has no "providers" object'],
      [{ providers: [] }, '"providers" must be an object'],
      [
        { providers: { "-bad": { clientId: "c", tokenEndpoint: "https://x/t" } } },
        'provider name "-bad" is invalid'
      ],
      [{ providers: { "a b": {} } }, 'provider name "a b" is invalid'],
      [{ providers: { p: "x" } }, "provider p: its settings must be an object"],
      [{ providers: { p: { tokenEndpoint: "https://x/t" } } }, "provider p: field clientId is missing"],
      [
        { providers: { p: { tokenEndpoint: "https://x/t", clientId: "" } } },
        "provider p: field clientId must be"
      ],
      [{ providers: { p: { clientId: "c" } } }, "provider p: field tokenEndpoint is missing"],
      [
        { providers: { p: { tokenEndpoint: "http://auth.example.com/t", clientId: "c" } } },
        "provider p: field tokenEndpoint must be an https URL"
      ],
      [
        { providers: { p: { issuer: "http://10.0.0.1", clientId: "c" } } },
        "provider p: field issuer must be an https URL"
      ],
      [
        { providers: { p: { tokenEndpoint: "not a url", clientId: "c" } } },
        "provider p: field tokenEndpoint must be an absolute URL"
      ],
      [
        { providers: { p: { tokenEndpoint: "https://x/t", clientId: "c", client_secret: "hunter2" } } },
        "provider p: field client_secret is not a known field"
      ],
      [
        { providers: { p: { tokenEndpoint: "https://x/t", clientId: "c", clientSecret: 12345 } } },
        "provider p: field clientSecret must be a non-empty string"
      ],
      [
        { providers: { p: { tokenEndpoint: "https://x/t", clientId: "c", scopes: ["a", 7] } } },
        "provider p: field scopes.1 must be a string"
      ]
    ]
    for (const [json, expected] of cases) {
      const message = problem(json)
      expect(message).toContain(expected)
      expect(message).not.toContain("hunter2")
      expect(message).not.toContain("12345")
    }
  })

  it("the login entry (§17): flow, redirectUri, authorizationParams; each problem named", () => {
    const base = { issuer: "https://auth.example.com", clientId: "c" }
    const parsed = parseProviders({
      providers: {
        device: { ...base, login: {} },
        paste: {
          ...base,
          login: {
            flow: "pkce_redirect",
            redirectUri: "https://auth.example.com/code",
            authorizationParams: { audience: "api", prompt: "consent" }
          }
        }
      }
    })
    expect(Either.getOrThrow(parsed)[1]?.login).toEqual({
      flow: "pkce_redirect",
      redirectUri: "https://auth.example.com/code",
      authorizationParams: { audience: "api", prompt: "consent" }
    })
    const login = (value: unknown) => problem({ providers: { p: { ...base, login: value } } })
    expect(login({ flow: "password" })).toContain(
      "provider p: field login.flow must be one of device_code, pkce_redirect, browser_redirect"
    )
    expect(login({ flow: "pkce_redirect" })).toContain(
      "provider p: field login.redirectUri is missing (pkce_redirect needs it)"
    )
    expect(login({ redirectUri: "http://evil.example/code" })).toContain(
      "provider p: field login.redirectUri must be an https URL"
    )
    expect(login({ authorizationParams: { state: "fixed" } })).toContain(
      "provider p: field login.authorizationParams must not set state: the login sets it"
    )
    expect(login({ authorizationParams: { audience: 7 } })).toContain(
      "provider p: field login.authorizationParams.audience must be a string"
    )
    expect(login({ clientSecret: "hunter2" })).toContain(
      "provider p: field login.clientSecret is not a known field"
    )
    expect(login({ clientSecret: "hunter2" })).not.toContain('hunter2"')
    expect(login("device_code")).toContain("provider p: field login must be an object")
  })

  it.scoped("a missing default file means no providers; a missing --providers file is an error", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      expect(yield* load({ dataDir: dir })).toEqual([])
      const error = yield* Effect.flip(load({ dataDir: dir, file: path.join(dir, "nope.json") }))
      expect(error.message).toContain("does not exist")
      fs.writeFileSync(
        path.join(dir, "providers.json"),
        '{"providers": {"x": {"clientId": "c", "tokenEndpoint": "https://a/t"}}}'
      )
      expect((yield* load({ dataDir: dir })).map((p) => p.name)).toEqual(["x"])
      fs.writeFileSync(path.join(dir, "broken.json"), '{"providers": {"x": {"clientSecret": "hunter2"')
      const broken = yield* Effect.flip(load({ dataDir: dir, file: path.join(dir, "broken.json") }))
      expect(broken.message).toContain("is not valid JSON")
      expect(broken.message).not.toContain("hunter2")
    })
  )
})

describe("providers on the command line", () => {
  it("serve refuses a bad providers file with exit 2 and says which provider and field", async () => {
    const workspace = makeWorkspace()
    try {
      const file = path.join(workspace.root, "providers.json")
      fs.writeFileSync(
        file,
        JSON.stringify({ providers: { acme: { tokenEndpoint: "http://auth.acme.test/t", clientId: "c" } } })
      )
      const result = await runCli([
        "serve",
        "--data-dir",
        workspace.dataDir,
        "--socket-dir",
        workspace.socketDir,
        "--providers",
        file
      ])
      expect(result.code).toBe(2)
      expect(result.stdout).toBe("")
      expect(result.stderr).toContain("provider acme: field tokenEndpoint must be an https URL")
      expect(fs.existsSync(workspace.socketDir) ? fs.readdirSync(workspace.socketDir) : []).toEqual([])

      // The default file in the data dir is read too, by serve and by providers list.
      fs.mkdirSync(workspace.dataDir, { recursive: true })
      fs.copyFileSync(file, path.join(workspace.dataDir, "providers.json"))
      const listed = await runCli(["providers", "list", "--data-dir", workspace.dataDir])
      expect(listed.code).toBe(2)
      expect(listed.stderr).toContain("provider acme: field tokenEndpoint")
    } finally {
      workspace.remove()
    }
  })

  it("providers list prints the names, one a line; none without a file", async () => {
    const workspace = makeWorkspace()
    try {
      expect(await runCli(["providers", "list", "--data-dir", workspace.dataDir])).toMatchObject({
        code: 0,
        stdout: ""
      })
      fs.mkdirSync(workspace.dataDir, { recursive: true })
      fs.writeFileSync(
        path.join(workspace.dataDir, "providers.json"),
        JSON.stringify({
          providers: {
            zeta: { tokenEndpoint: "https://z.example/t", clientId: "z" },
            alpha: { issuer: "https://a.example", clientId: "a" }
          }
        })
      )
      expect(await runCli(["providers", "list", "--data-dir", workspace.dataDir])).toMatchObject({
        code: 0,
        stdout: "alpha\nzeta\n"
      })
      // A stored token whose provider is not configured: PROVIDER_NOT_FOUND on the socket, exit 1 here.
      await runCli(["token", "import", "acme", "--data-dir", workspace.dataDir], {
        stdin: JSON.stringify({ access_token: "a", expiry: 1, token_type: "Bearer", refresh_token: "r" })
      })
      const refresh = await runCli(["token", "refresh", "acme", "--data-dir", workspace.dataDir])
      expect(refresh.code).toBe(1)
      expect(refresh.stderr).toContain("provider acme is not configured")
    } finally {
      workspace.remove()
    }
  })
})
