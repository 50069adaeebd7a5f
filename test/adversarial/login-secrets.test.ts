import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import type { OAuthToken } from "../../src/protocol/token.js"
import { authServerWith, REDIRECT_URI } from "../support/auth-server.js"
import { startServe, useCliWorkspace } from "../support/cli.js"
import { FrameClient, type Json } from "../support/frame-client.js"
import { loginProvider, providersFileFor, storedToken } from "../support/login.js"
import { poll } from "../support/until.js"

/**
 * PROTOCOL.md §12 and §17 for logins: the real `serve` at `--log-level
 * trace --log-format json` runs a full login of each flow for a client on
 * its socket. Afterwards nothing it wrote holds a PKCE verifier, a state, a
 * device code, an authorization code, an access or refresh token, or more
 * than the first 8 characters of a session id; the login lines carry op,
 * provider, bucket, flow, session prefix and outcome.
 */

const workspace = useCliWorkspace()
const promise = <A>(f: () => Promise<A>) => Effect.promise(f)

describe("a full login at --log-level trace", () => {
  it.scopedLive("logs no secret of any flow", () =>
    Effect.gen(function* () {
      const auth = yield* authServerWith({ deviceInterval: 1 })
      const file = providersFileFor(path.join(workspace.ws.root, "providers.json"), [
        loginProvider(auth, {}, "device"),
        loginProvider(auth, { flow: "pkce_redirect", redirectUri: REDIRECT_URI }, "paste"),
        loginProvider(auth, { flow: "browser_redirect" }, "browser")
      ])
      const serve = yield* promise(() =>
        startServe([
          "--data-dir",
          workspace.ws.dataDir,
          "--socket-dir",
          workspace.ws.socketDir,
          "--providers",
          file,
          "--log-level",
          "trace",
          "--log-format",
          "json"
        ])
      )
      const client = yield* promise(() =>
        FrameClient.open(serve.socketPath, { minVersion: 1, maxVersion: 2 })
      )
      workspace.clients.push(client)
      const call = (op: string, payload: Json) => promise(() => client.request(op, payload))
      const finished = (session_id: string) =>
        promise(() =>
          poll(
            () => client.request("oauth_poll", { session_id }),
            (reply) => reply.data?.status !== "pending",
            { limitMs: 10_000, intervalMs: 50, what: "the login to finish" }
          )
        )
      const secrets: Array<string> = []
      const sessionIds: Array<string> = []

      const device = yield* call("oauth_initiate", { provider: "device" })
      sessionIds.push(device.data.session_id)
      yield* promise(() => auth.browse(device.data.verification_uri_complete))
      expect((yield* finished(device.data.session_id)).value.data.status).toBe("complete")

      const paste = yield* call("oauth_initiate", { provider: "paste" })
      sessionIds.push(paste.data.session_id)
      secrets.push(new URL(paste.data.auth_url).searchParams.get("state") ?? "")
      const back = new URL(
        (yield* promise(() =>
          auth.browse(paste.data.auth_url, { stopAt: (to) => to.startsWith(REDIRECT_URI) })
        )) ?? ""
      )
      const pasted = `${back.searchParams.get("code")}#${back.searchParams.get("state")}`
      expect((yield* call("oauth_exchange", { session_id: paste.data.session_id, code: pasted })).ok).toBe(
        true
      )

      const browser = yield* call("oauth_initiate", { provider: "browser" })
      sessionIds.push(browser.data.session_id)
      const redirectUri = new URL(browser.data.auth_url).searchParams.get("redirect_uri") ?? ""
      secrets.push(new URL(browser.data.auth_url).searchParams.get("state") ?? "")
      const location = yield* promise(() =>
        auth.browse(browser.data.auth_url, { stopAt: (to) => to.startsWith(redirectUri) })
      )
      expect((yield* promise(() => fetch(location ?? ""))).status).toBe(200)
      expect((yield* finished(browser.data.session_id)).value.data.status).toBe("complete")

      for (const provider of ["device", "paste", "browser"]) {
        const served = yield* call("get_token", { provider })
        expect(served.ok).toBe(true)
        secrets.push(served.data.access_token)
      }
      expect((yield* promise(() => serve.stop())).code).toBe(0)
      for (const provider of ["device", "paste", "browser"]) {
        const stored = (yield* storedToken(workspace.ws.dataDir, provider)) as OAuthToken
        secrets.push(stored.refresh_token ?? "", stored.access_token)
        if (typeof stored.id_token === "string") secrets.push(stored.id_token)
      }
      // Device codes, authorization codes and PKCE verifiers, as the provider received them.
      secrets.push(...auth.seenSecrets())
      // At least: the device code, and a code and a verifier of each code flow.
      expect(auth.seenSecrets().length).toBeGreaterThanOrEqual(5)

      const written = serve.stdout() + serve.stderr()
      for (const secret of secrets) {
        expect(secret.length).toBeGreaterThan(8)
        expect(written.includes(secret), "a secret is in the log").toBe(false)
      }
      for (const id of sessionIds) {
        expect(written.includes(id.slice(4)), "more than a session id's prefix is in the log").toBe(false)
      }
      const lines = serve
        .stderr()
        .trimEnd()
        .split("\n")
        .map((line) => JSON.parse(line))
      const logins = lines.filter((line) => line.message === "login").map((line) => line.annotations)
      expect(logins).toContainEqual({
        op: "oauth_initiate",
        provider: "device",
        bucket: "default",
        flow: "device_code",
        session: sessionIds[0]?.slice(0, 8),
        outcome: "ok"
      })
      expect(logins).toContainEqual(
        expect.objectContaining({ op: "oauth_exchange", provider: "paste", outcome: "complete" })
      )
      expect(logins).toContainEqual(
        expect.objectContaining({ op: "login", provider: "browser", outcome: "complete" })
      )
    })
  )
})
