import * as fs from "node:fs"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { encodeFrame } from "../../src/protocol/frame.js"
import { runCli, startServe, useCliWorkspace } from "../support/cli.js"
import { FrameClient, type Json } from "../support/frame-client.js"
import { until } from "../support/until.js"

/**
 * PROTOCOL.md §12 against the real binary: a full session at
 * `--log-level trace --log-format json`, with every kind of secret in play
 * (stored and incoming access, refresh and id tokens, API keys inside and
 * outside the policy, the capability token and a near-miss of it, OAuth
 * codes, verifiers, state, device codes and session ids, secrets inside
 * malformed frames), success and failure paths, a refused handshake and a
 * SIGUSR1 status line. Afterwards nothing the process wrote contains any
 * secret, and every stderr line is one JSON object.
 */

/** Each secret is unique and long enough that finding it (or its tail) in the log means it leaked. */
const secret = (kind: string) =>
  `${kind}-SECRET-${Math.random().toString(16).slice(2, 10)}${Date.now().toString(16)}`

const S = {
  storedAccess: secret("at"),
  storedRefresh: secret("rt"),
  storedIdToken: secret("idt"),
  apiKey: secret("sk-openai"),
  forbiddenKey: secret("sk-forbidden"),
  capability: secret("cap"),
  savedAccess: secret("at-new"),
  savedRefresh: secret("rt-new"),
  savedIdToken: secret("idt-new"),
  invalidTokenAccess: secret("at-invalid"),
  badJson: secret("in-bad-json"),
  preHandshakeJunk: secret("junk"),
  authCode: secret("code"),
  pkceVerifier: secret("verifier"),
  pkceChallenge: secret("challenge"),
  oauthState: secret("state"),
  deviceCode: secret("device"),
  sessionId: secret("session")
} as const

/** A near miss of the capability token (all but its last character), presented by a hostile client. */
const WRONG_CAPABILITY = `${S.capability.slice(0, -1)}${S.capability.endsWith("0") ? "1" : "0"}`

const workspace = useCliWorkspace()
const { clients } = workspace

const cli = async (args: ReadonlyArray<string>, stdin: string) => {
  const result = await runCli([...args, "--data-dir", workspace.ws.dataDir], { stdin })
  expect({ code: result.code, stderr: result.stderr }).toMatchObject({ code: 0 })
  return result
}

const connect = async (socketPath: string): Promise<FrameClient> => {
  const client = await FrameClient.connect(socketPath)
  clients.push(client)
  return client
}

/** Every needle that must not appear: each secret, and the part of it after its kind (a truncated leak). */
const needles = (): Array<[string, string]> =>
  [...Object.entries(S), ["wrongCapability", WRONG_CAPABILITY] as const].flatMap(([name, value]) => {
    const tail = value.slice(value.indexOf("SECRET-") + "SECRET-".length)
    // Session ids: the first 8 characters may be logged (§12); the rest may not.
    const core = name === "sessionId" ? value.slice(8) : tail
    return [
      [name, value],
      [`${name} (part)`, core]
    ] as Array<[string, string]>
  })

describe("secrets never logged (PROTOCOL.md §12)", () => {
  it("a full session at --log-level trace: no secret in stdout or stderr, one JSON object per stderr line", async () => {
    await cli(
      ["token", "import", "anthropic"],
      JSON.stringify({
        access_token: S.storedAccess,
        refresh_token: S.storedRefresh,
        id_token: S.storedIdToken,
        expiry: 4_102_444_800,
        token_type: "Bearer",
        scope: "openid offline_access",
        account_id: "acct-1"
      })
    )
    await cli(["key", "set", "openai"], `${S.apiKey}\n`)
    await cli(["key", "set", "secret-key"], S.forbiddenKey)
    const tokenFile = path.join(workspace.ws.root, "capability")
    fs.writeFileSync(tokenFile, `${S.capability}\n`, { mode: 0o600 })

    const server = await startServe([
      "--data-dir",
      workspace.ws.dataDir,
      "--socket-dir",
      workspace.ws.socketDir,
      "--allow-key",
      "openai",
      "--capability-token-file",
      tokenFile,
      "--log-level",
      "trace",
      "--log-format",
      "json"
    ])

    // A hostile client with a near-miss token, one with the token in the wrong type, one sending junk.
    const wrong = await connect(server.socketPath)
    expect(
      await wrong.handshake({ minVersion: 1, maxVersion: 1, capabilityToken: WRONG_CAPABILITY })
    ).toMatchObject({
      ok: false,
      code: "UNAUTHORIZED"
    })
    await wrong.waitClosed()
    const wrapped = await connect(server.socketPath)
    expect(
      await wrapped.handshake({ minVersion: 1, maxVersion: 1, capabilityToken: { token: S.capability } })
    ).toMatchObject({ ok: false, code: "UNAUTHORIZED" })
    await wrapped.waitClosed()
    const junk = await connect(server.socketPath)
    junk.sendRaw(encodeFrame(`{"op":"handshake","payload":{"capabilityToken":"${S.preHandshakeJunk}"`))
    await junk.waitClosed()

    // The real session.
    const client = await connect(server.socketPath)
    expect(
      await client.handshake({ minVersion: 1, maxVersion: 1, capabilityToken: S.capability })
    ).toMatchObject({
      ok: true
    })
    const requests: Array<[string, Json, (reply: Json) => void]> = [
      [
        "get_token",
        { provider: "anthropic" },
        (r) => {
          expect(r.data.access_token).toBe(S.storedAccess)
          expect(r.data.id_token).toBe(S.storedIdToken)
          expect(r.data.refresh_token).toBeUndefined()
        }
      ],
      [
        "save_token",
        {
          provider: "anthropic",
          bucket: "second",
          token: {
            access_token: S.savedAccess,
            refresh_token: S.savedRefresh,
            id_token: S.savedIdToken,
            expiry: 4_102_444_800,
            token_type: "Bearer"
          }
        },
        (r) => expect(r.ok).toBe(true)
      ],
      [
        "get_token",
        { provider: "anthropic", bucket: "second" },
        (r) => expect(r.data.access_token).toBe(S.savedAccess)
      ],
      [
        "save_token",
        {
          provider: "anthropic",
          token: { access_token: S.storedAccess, expiry: 4_102_444_800, token_type: "Bearer" }
        },
        (r) => expect(r.ok).toBe(true)
      ],
      ["get_api_key", { name: "openai" }, (r) => expect(r.data.key).toBe(S.apiKey)],
      ["get_api_key", { name: "secret-key" }, (r) => expect(r.code).toBe("UNAUTHORIZED")],
      ["has_api_key", { name: "openai" }, (r) => expect(r.data.exists).toBe(true)],
      ["list_api_keys", {}, (r) => expect(r.data.keys).toEqual(["openai"])],
      ["list_providers", {}, (r) => expect(r.data.providers).toEqual(["anthropic"])],
      [
        "list_buckets",
        { provider: "anthropic" },
        (r) => expect(r.data.buckets).toEqual(["default", "second"])
      ],
      ["get_bucket_stats", { provider: "anthropic" }, (r) => expect(r.ok).toBe(true)],
      ["get_token", { provider: "missing" }, (r) => expect(r.code).toBe("NOT_FOUND")],
      ["get_api_key", { name: "missing" }, (r) => expect(r.ok).toBe(false)],
      ["refresh_token", { provider: "anthropic" }, (r) => expect(r.ok).toBe(false)],
      [
        "save_token",
        {
          provider: "anthropic",
          token: { access_token: S.invalidTokenAccess, expiry: "soon", token_type: "Bearer" }
        },
        (r) => expect(r.code).toBe("INVALID_REQUEST")
      ],
      ["get_token", { provider: "../etc", bucket: null }, (r) => expect(r.code).toBe("INVALID_REQUEST")],
      [
        "oauth_initiate",
        { provider: "anthropic", state: S.oauthState, code_challenge: S.pkceChallenge },
        (r) => expect(r.code).toBe("PROVIDER_NOT_FOUND")
      ],
      [
        "oauth_exchange",
        { session_id: S.sessionId, code: S.authCode, code_verifier: S.pkceVerifier, state: S.oauthState },
        (r) => expect(r.code).toBe("SESSION_NOT_FOUND")
      ],
      [
        "oauth_poll",
        { session_id: S.sessionId, device_code: S.deviceCode },
        (r) => expect(r.code).toBe("SESSION_NOT_FOUND")
      ],
      // Cancelling an unknown session is not an error (§20).
      ["oauth_cancel", { session_id: S.sessionId }, (r) => expect(r).toMatchObject({ ok: true, data: {} })],
      ["remove_token", { provider: "anthropic", bucket: "second" }, (r) => expect(r.ok).toBe(true)]
    ]
    for (const [op, payload, check] of requests) {
      const reply = await client.request(op, payload)
      check(reply)
    }
    // Malformed frames that carry secrets: not JSON, and JSON that is not an object.
    client.send(`{"v":1,"id":"bad","op":"save_token","payload":{"token":{"access_token":"${S.badJson}"`)
    expect(await client.nextFrame()).toMatchObject({ ok: false, code: "INVALID_REQUEST" })
    client.send(JSON.stringify([S.badJson, S.storedRefresh]))
    expect(await client.nextFrame()).toMatchObject({ ok: false, code: "INVALID_REQUEST" })
    // A token sent after the handshake is only a field of a request.
    expect(await client.request("list_api_keys", { capabilityToken: S.capability })).toMatchObject({
      ok: true
    })

    // The status line on SIGUSR1, and `credproxy status` (its connections, refresh state and audit tail).
    server.child.kill("SIGUSR1")
    await until(() => server.stderr().includes('"message":"status"'), { what: "a status line on stderr" })
    const adminViews = await Promise.all([
      cli(["status", "--json"], ""),
      cli(["status"], ""),
      cli(["policy", "show"], "")
    ])
    expect(adminViews.map((view) => view.code)).toEqual([0, 0, 0])
    client.close()
    expect((await server.stop("SIGTERM")).code).toBe(0)

    const stdout = server.stdout()
    const stderr = server.stderr()
    expect(stdout).toBe(`${server.readyText}\n`)
    const admin = adminViews.map((view) => `${view.stdout}${view.stderr}`).join("\n")
    expect(admin).toContain("get_token")
    const leaks = needles().flatMap(([name, needle]) =>
      stdout.includes(needle) || stderr.includes(needle) || admin.includes(needle) ? [name] : []
    )
    expect(leaks).toEqual([])

    const lines = stderr.split("\n")
    expect(lines.pop()).toBe("")
    for (const line of lines) {
      let parsed: unknown
      expect(() => {
        parsed = JSON.parse(line)
      }, line).not.toThrow()
      expect(typeof parsed === "object" && parsed !== null && !Array.isArray(parsed), line).toBe(true)
    }
    // The log did record the session: per-request lines, the refusal, and the counters.
    const entries = lines.map((line) => JSON.parse(line) as Json)
    const status = entries.find((e) => e.message === "status")
    expect(status.annotations.connections).toMatchObject({
      rejected: { capability_token: 2, bad_handshake: 1 }
    })
    const text = JSON.stringify(entries)
    for (const op of ["get_token", "save_token", "get_api_key", "oauth_exchange"]) expect(text).toContain(op)
  }, 30_000)

  // Regression guard: a failed request's fiber ends with an error nobody joins, which Effect's
  // runtime logs at DEBUG ("Fiber terminated with an unhandled error") with the whole Cause
  // rendered. RefreshFailure once carried oauth4webapi's error, whose own cause is the provider's
  // response body, so a malformed or unsupported refresh answer leaked the provider's new tokens
  // at --log-level debug/trace. RefreshFailure now keeps only safe fields (reason, provider, detail).
  it("refresh answers from the provider carrying tokens are not logged, even when malformed", async () => {
    const P = {
      malformedAccess: secret("p-at-malformed"),
      malformedRefresh: secret("p-rt-malformed"),
      unsupportedAccess: secret("p-at-unsupported"),
      okAccess: secret("p-at-ok"),
      okRefresh: secret("p-rt-ok"),
      storedRefreshMalformed: secret("rt-stored-m"),
      storedRefreshUnsupported: secret("rt-stored-u"),
      storedRefreshRejected: secret("rt-stored-r"),
      storedRefreshOk: secret("rt-stored-ok"),
      storedAccess: secret("at-stored"),
      clientSecret: secret("client-secret")
    } as const
    // A token endpoint on loopback (plain http is allowed there) that answers by refresh token.
    const provider = http.createServer((req, res) => {
      let body = ""
      req.on("data", (chunk: Buffer) => {
        body += chunk.toString()
      })
      req.on("end", () => {
        const form = new URLSearchParams(body)
        const refresh = form.get("refresh_token")
        const json = (status: number, value: unknown) => {
          res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store" })
          res.end(JSON.stringify(value))
        }
        if (refresh === P.storedRefreshMalformed) {
          json(200, { access_token: P.malformedAccess, refresh_token: P.malformedRefresh, expires_in: 3600 })
        } else if (refresh === P.storedRefreshUnsupported) {
          json(200, { access_token: P.unsupportedAccess, token_type: "mac", expires_in: 3600 })
        } else if (refresh === P.storedRefreshRejected) {
          json(400, { error: "invalid_grant", error_description: `refresh token ${refresh} was revoked` })
        } else if (refresh === P.storedRefreshOk) {
          json(200, {
            access_token: P.okAccess,
            refresh_token: P.okRefresh,
            token_type: "Bearer",
            expires_in: 3600
          })
        } else {
          json(400, { error: "invalid_request" })
        }
      })
    })
    await new Promise<void>((resolve) => provider.listen(0, "127.0.0.1", resolve))
    try {
      const port = (provider.address() as AddressInfo).port
      fs.mkdirSync(workspace.ws.dataDir, { recursive: true, mode: 0o700 })
      fs.writeFileSync(
        path.join(workspace.ws.dataDir, "providers.json"),
        JSON.stringify({
          providers: {
            anthropic: {
              tokenEndpoint: `http://127.0.0.1:${port}/token`,
              clientId: "public-client",
              clientSecret: P.clientSecret
            }
          }
        }),
        { mode: 0o600 }
      )
      const expired = Math.floor(Date.now() / 1000) - 100
      const buckets = {
        m: P.storedRefreshMalformed,
        u: P.storedRefreshUnsupported,
        r: P.storedRefreshRejected,
        ok: P.storedRefreshOk
      }
      for (const [bucket, refresh] of Object.entries(buckets)) {
        await cli(
          ["token", "import", "anthropic", "--bucket", bucket],
          JSON.stringify({
            access_token: P.storedAccess,
            refresh_token: refresh,
            expiry: expired,
            token_type: "Bearer"
          })
        )
      }
      const server = await startServe([
        "--data-dir",
        workspace.ws.dataDir,
        "--socket-dir",
        workspace.ws.socketDir,
        "--log-level",
        "trace",
        "--log-format",
        "json"
      ])
      const client = await FrameClient.open(server.socketPath)
      clients.push(client)
      const outcomes: Record<string, unknown> = {}
      for (const bucket of Object.keys(buckets)) {
        const reply = await client.request("refresh_token", { provider: "anthropic", bucket })
        outcomes[bucket] = reply.ok ? reply.data.access_token : reply.code
      }
      // The provider was really asked: a good answer is served (sanitized), a rejected one means log in again.
      expect(outcomes.ok).toBe(P.okAccess)
      expect(outcomes.r).toBe("REAUTH_REQUIRED")
      expect(outcomes.m).not.toBe(P.malformedAccess)
      client.close()
      expect((await server.stop("SIGTERM")).code).toBe(0)
      const output = server.stdout() + server.stderr()
      const leaked = Object.entries(P).flatMap(([name, value]) => (output.includes(value) ? [name] : []))
      expect(leaked).toEqual([])
    } finally {
      provider.close()
    }
  }, 30_000)
})
