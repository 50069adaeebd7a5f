import * as fs from "node:fs"
import * as http from "node:http"
import * as path from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { runCli, startServe, useCliWorkspace } from "./support/cli.js"
import {
  codeOf,
  egressServeArgs,
  PHANTOM,
  sandboxRequest,
  startAuthServer,
  target,
  writeFile0600
} from "./support/egress.js"
import { startUpstream, type Upstream, type UpstreamHandler } from "./support/https-upstream.js"
import { until } from "./support/until.js"

/**
 * Egress mode (docs/PROTOCOL.md §23) through the real binary against a real
 * HTTPS upstream on loopback with a CA of its own (trusted via --egress-ca):
 * the sandbox sends a phantom, the upstream gets the real key or token.
 */

const workspace = useCliWorkspace()
const upstreams: Array<Upstream> = []
const closers: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const upstream of upstreams.splice(0)) await upstream.close()
  for (const close of closers.splice(0)) await close()
})

const REAL_KEY = "sk-real-key-0123456789-never-in-the-sandbox"

const upstreamOf = async (handler: UpstreamHandler, options: { streaming?: boolean } = {}) => {
  const upstream = await startUpstream(handler, options)
  upstreams.push(upstream)
  return upstream
}

const echo: UpstreamHandler = (request, res) => {
  res.writeHead(200, { "content-type": "application/json", "x-upstream": "yes" })
  res.end(JSON.stringify({ ok: true, path: request.url, bytes: request.body.length }))
}

const routesFile = (upstream: Upstream, extra: Record<string, unknown> = {}) =>
  writeFile0600(
    path.join(workspace.ws.root, "routes.json"),
    JSON.stringify({
      routes: {
        anthropic: {
          upstream: `${upstream.origin}/base`,
          credential: { apiKey: "anthropic" },
          header: "x-api-key",
          allow: ["POST /v1/messages", "GET /v1/models*"],
          env: { ANTHROPIC_BASE_URL: "{url}", ANTHROPIC_API_KEY: "{phantom}" }
        },
        openai: {
          upstream: upstream.origin,
          credential: { token: "oidc" },
          header: "authorization",
          scheme: "Bearer",
          env: { OPENAI_BASE_URL: "{url}", OPENAI_API_KEY: "{phantom}" }
        },
        ...extra
      }
    })
  )

const setKey = async () => {
  const set = await runCli(["key", "set", "anthropic", "--data-dir", workspace.ws.dataDir], {
    stdin: REAL_KEY
  })
  expect(set.code).toBe(0)
}

const serveEgress = async (upstream: Upstream, args: ReadonlyArray<string> = []) => {
  // The phantom file ends with a newline, as an editor leaves it: it is not part of the phantom.
  const server = await startServe([
    ...egressServeArgs(workspace.ws, routesFile(upstream), upstream.caFile, `${PHANTOM}\n`),
    "--egress-listen",
    "127.0.0.1:0",
    ...args
  ])
  expect(server.ready.egress).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
  return { server, egress: server.ready.egress! }
}

const messages = (egress: string, headers: Record<string, string> = { "x-api-key": PHANTOM }) =>
  sandboxRequest(egress, {
    method: "POST",
    path: "/anthropic/v1/messages?beta=true",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify({ model: "m", messages: [] })
  })

describe("egress: the upstream gets the real credential, the sandbox only a phantom", () => {
  it("an API key route: the real key goes upstream in the route header, the phantom never does", async () => {
    const upstream = await upstreamOf(echo)
    await setKey()
    const { egress } = await serveEgress(upstream)
    const answer = await messages(egress, { "x-api-key": PHANTOM, "x-copy": `copy ${PHANTOM}` })
    expect(answer.status).toBe(200)
    expect(answer.headers["x-upstream"]).toBe("yes")
    expect(JSON.parse(answer.body)).toMatchObject({ path: "/base/v1/messages?beta=true" })
    expect(upstream.received).toHaveLength(1)
    const got = upstream.received[0]!
    expect(got.headers["x-api-key"]).toBe(REAL_KEY)
    expect(got.headers.host).toBe(new URL(upstream.origin).host)
    expect(got.body.toString()).toBe(JSON.stringify({ model: "m", messages: [] }))
    expect(JSON.stringify(got.headers)).not.toContain(PHANTOM)
    expect(JSON.stringify(answer)).not.toContain(REAL_KEY)
  })

  it("a wrong or missing phantom is 401 and nothing reaches the upstream", async () => {
    const upstream = await upstreamOf(echo)
    await setKey()
    const { egress } = await serveEgress(upstream)
    for (const headers of [
      {},
      { "x-api-key": "wrong" },
      { "x-api-key": `${PHANTOM}x` },
      { "x-api-key": REAL_KEY }
    ]) {
      const answer = await messages(egress, headers)
      expect(answer.status).toBe(401)
      expect(codeOf(answer)).toBe("UNAUTHORIZED")
    }
    const bearer = await sandboxRequest(egress, {
      path: "/openai/models",
      headers: { authorization: PHANTOM }
    })
    expect(bearer.status).toBe(401)
    expect(upstream.started()).toBe(0)
  })

  it("allow rules, unknown routes, odd paths and the access policy refuse before the upstream", async () => {
    const upstream = await upstreamOf(echo)
    await setKey()
    const { egress } = await serveEgress(upstream, ["--allow-key", "other"])
    const refused = async (method: string, p: string, status: number, code: string) => {
      const answer = await sandboxRequest(egress, { method, path: p, headers: { "x-api-key": PHANTOM } })
      expect({ p, status: answer.status }).toEqual({ p, status })
      expect(codeOf(answer)).toBe(code)
    }
    await refused("GET", "/anthropic/v1/messages", 403, "FORBIDDEN")
    await refused("POST", "/anthropic/v1/messages/extra", 403, "FORBIDDEN")
    await refused("GET", "/nowhere/v1/models", 404, "NOT_FOUND")
    await refused("GET", "/anthropic/v1/models/../../admin", 400, "INVALID_REQUEST")
    await refused("GET", "/anthropic/v1/models/%2e%2e/admin", 400, "INVALID_REQUEST")
    await refused("GET", `/anthropic/v1/models?key=${PHANTOM}`, 400, "INVALID_REQUEST")
    // Allowed by the route, refused by the policy (only the key "other" may be used).
    await refused("GET", "/anthropic/v1/models", 403, "FORBIDDEN")
    expect(upstream.started()).toBe(0)
  })

  it("a credential that is not stored is 502 NOT_FOUND", async () => {
    const upstream = await upstreamOf(echo)
    const { egress } = await serveEgress(upstream)
    const answer = await sandboxRequest(egress, {
      path: "/anthropic/v1/models",
      headers: { "x-api-key": PHANTOM }
    })
    expect(answer.status).toBe(502)
    expect(JSON.parse(answer.body)).toEqual({
      error: { type: "credproxy", code: "NOT_FOUND", message: "api key not found" }
    })
    expect(upstream.started()).toBe(0)
  })
})

describe("egress: streaming both ways", () => {
  it("server-sent events arrive one by one: the first is seen before the upstream sends the last", async () => {
    let release: () => void = () => {}
    const released = new Promise<void>((resolve) => {
      release = resolve
    })
    const upstream = await upstreamOf(async (_request, res) => {
      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" })
      res.write("event: first\ndata: 1\n\n")
      await released
      res.end("event: last\ndata: 2\n\n")
    })
    await setKey()
    const { egress } = await serveEgress(upstream)
    const events: Array<string> = []
    const done = new Promise<number>((resolve, reject) => {
      const req = http.request(
        {
          ...target(egress),
          method: "GET",
          path: "/anthropic/v1/models/stream",
          headers: { "x-api-key": PHANTOM }
        },
        (res) => {
          res.setEncoding("utf8")
          res.on("data", (chunk: string) => events.push(chunk))
          res.on("end", () => resolve(res.statusCode ?? 0))
        }
      )
      req.on("error", reject)
      req.end()
    })
    await until(() => events.join("").includes("data: 1"), { what: "the first event" })
    expect(events.join("")).not.toContain("data: 2")
    release()
    expect(await done).toBe(200)
    expect(events.join("")).toBe("event: first\ndata: 1\n\nevent: last\ndata: 2\n\n")
  })

  it("the sandbox closing early aborts the upstream request", async () => {
    const upstream = await upstreamOf((_request, res) => {
      res.writeHead(200, { "content-type": "text/event-stream" })
      res.write("data: 1\n\n")
      // Never ends by itself.
    })
    await setKey()
    const { egress } = await serveEgress(upstream)
    await new Promise<void>((resolve, reject) => {
      const req = http.request(
        { ...target(egress), path: "/anthropic/v1/models", headers: { "x-api-key": PHANTOM } },
        (res) => {
          res.once("data", () => {
            req.destroy()
            resolve()
          })
        }
      )
      req.on("error", () => {})
      req.on("close", resolve)
      req.end()
      setTimeout(() => reject(new Error("no first chunk")), 10_000)
    })
    await until(() => upstream.aborted() === 1, {
      what: "the upstream request to be aborted",
      limitMs: 10_000
    })
  })

  it("a request body streams to the upstream and a large one is forwarded whole", async () => {
    const upstream = await upstreamOf(echo)
    await setKey()
    const { egress } = await serveEgress(upstream)
    const body = Buffer.alloc(5 * 1024 * 1024, "a")
    const answer = await messages(egress, { "x-api-key": PHANTOM }).then(() =>
      sandboxRequest(egress, {
        method: "POST",
        path: "/anthropic/v1/messages",
        headers: { "x-api-key": PHANTOM },
        body
      })
    )
    expect(answer.status).toBe(200)
    expect(JSON.parse(answer.body)).toMatchObject({ bytes: body.length })
  })
})

/** A POST to the messages route whose body the test writes itself; `status` is the answer's. */
const openPost = (egress: string, headers: Readonly<Record<string, string>>) => {
  let req!: http.ClientRequest
  const status = new Promise<number>((resolve, reject) => {
    req = http.request(
      {
        ...target(egress),
        method: "POST",
        path: "/anthropic/v1/messages",
        headers: { "x-api-key": PHANTOM, ...headers }
      },
      (res) => {
        res.resume()
        resolve(res.statusCode ?? 0)
      }
    )
    req.on("error", reject)
  })
  return { req, status }
}

describe("egress: limits", () => {
  it("a body over 32 MiB is 413, by its length before anything is sent", async () => {
    const upstream = await upstreamOf(echo)
    await setKey()
    const { egress } = await serveEgress(upstream)
    const { req, status } = openPost(egress, { "content-length": String(33 * 1024 * 1024) })
    req.write("x")
    const answer = await status
    expect(answer).toBe(413)
    expect(upstream.started()).toBe(0)
  })

  it("a chunked body that grows past 32 MiB is 413 and the upstream request is aborted", async () => {
    const upstream = await upstreamOf(echo)
    await setKey()
    const { egress } = await serveEgress(upstream)
    const { req, status } = openPost(egress, {})
    const chunk = Buffer.alloc(1024 * 1024, "b")
    let sent = 0
    const more = () => {
      while (sent < 40) {
        sent++
        if (!req.write(chunk)) return void req.once("drain", more)
      }
      req.end()
    }
    more()
    expect(await status).toBe(413)
    expect(upstream.received).toHaveLength(0)
  })

  it("the 65th request in flight is 429 with retry-after", async () => {
    let release: () => void = () => {}
    const released = new Promise<void>((resolve) => {
      release = resolve
    })
    const upstream = await upstreamOf(async (_request, res) => {
      await released
      res.end("done")
    })
    await setKey()
    const { egress } = await serveEgress(upstream)
    const held = Array.from({ length: 64 }, () =>
      sandboxRequest(egress, { path: "/anthropic/v1/models", headers: { "x-api-key": PHANTOM } })
    )
    await until(() => upstream.started() === 64, { what: "64 requests at the upstream", limitMs: 15_000 })
    const refused = await sandboxRequest(egress, {
      path: "/anthropic/v1/models",
      headers: { "x-api-key": PHANTOM }
    })
    expect(refused.status).toBe(429)
    expect(refused.headers["retry-after"]).toBe("1")
    expect(codeOf(refused)).toBe("RATE_LIMITED")
    release()
    const answers = await Promise.all(held)
    expect(answers.every((answer) => answer.status === 200)).toBe(true)
    expect(upstream.started()).toBe(64)
  })
})

describe("egress: tokens and refresh against the real oidc-provider", () => {
  const setUp = async () => {
    const { auth, close } = await startAuthServer()
    closers.push(close)
    writeFile0600(
      path.join(workspace.ws.root, "providers.json"),
      JSON.stringify({ providers: { oidc: { tokenEndpoint: auth.tokenEndpoint, clientId: "cli" } } })
    )
    // The upstream accepts what the authorization server says is live.
    const upstream = await upstreamOf(async (request, res) => {
      const bearer = String(request.headers.authorization ?? "").replace(/^Bearer /, "")
      const status = await auth.userinfoStatus(bearer)
      res.writeHead(status === 200 ? 200 : 401, { "content-type": "application/json" })
      res.end(JSON.stringify({ live: status === 200, bytes: request.body.length }))
    })
    const tokens = await auth.login("cli")
    const importToken = async (fields: Record<string, unknown>) => {
      const token = {
        access_token: tokens.access_token,
        token_type: tokens.token_type,
        refresh_token: tokens.refresh_token,
        expiry: Math.floor(Date.now() / 1000) + 3600,
        ...fields
      }
      const imported = await runCli(["token", "import", "oidc", "--data-dir", workspace.ws.dataDir], {
        stdin: JSON.stringify(token)
      })
      expect(imported.code).toBe(0)
    }
    const { egress } = await serveEgress(upstream, [
      "--providers",
      path.join(workspace.ws.root, "providers.json")
    ])
    return { auth, upstream, tokens, importToken, egress }
  }

  it("an expired token is refreshed before the call; the upstream gets the new one", async () => {
    const { auth, upstream, tokens, importToken, egress } = await setUp()
    await importToken({ expiry: Math.floor(Date.now() / 1000) - 10 })
    const before = auth.tokenRequests()
    const answer = await sandboxRequest(egress, {
      path: "/openai/v1/models",
      headers: { authorization: `Bearer ${PHANTOM}` }
    })
    expect(answer.status).toBe(200)
    expect(auth.tokenRequests() - before).toBe(1)
    expect(upstream.received).toHaveLength(1)
    const sent = String(upstream.received[0]!.headers.authorization)
    expect(sent).toMatch(/^Bearer /)
    expect(sent).not.toBe(`Bearer ${tokens.access_token}`)
    expect(answer.body).not.toContain(sent.slice(7))
  })

  it("an upstream 401 causes exactly one refresh and one retry of the same request", async () => {
    const { auth, upstream, importToken, egress } = await setUp()
    await importToken({ access_token: "revoked-access-token-0123456789" })
    const before = auth.tokenRequests()
    const answer = await sandboxRequest(egress, {
      method: "POST",
      path: "/openai/v1/chat/completions",
      headers: { authorization: `Bearer ${PHANTOM}`, "content-type": "application/json" },
      body: '{"hello":"world"}'
    })
    expect(answer.status).toBe(200)
    expect(JSON.parse(answer.body)).toEqual({ live: true, bytes: 17 })
    expect(auth.tokenRequests() - before).toBe(1)
    expect(upstream.received.map((r) => r.body.toString())).toEqual([
      '{"hello":"world"}',
      '{"hello":"world"}'
    ])
    expect(upstream.received[0]!.headers.authorization).toBe("Bearer revoked-access-token-0123456789")
    expect(upstream.received[1]!.headers.authorization).not.toBe(upstream.received[0]!.headers.authorization)
  })
})

describe("egress: start-up checks", () => {
  const serveWith = (routes: unknown, extra: ReadonlyArray<string> = []) => {
    const file = writeFile0600(path.join(workspace.ws.root, "routes.json"), JSON.stringify(routes))
    return runCli([
      "serve",
      "--data-dir",
      workspace.ws.dataDir,
      "--socket-dir",
      workspace.ws.socketDir,
      "--egress",
      file,
      ...extra
    ])
  }
  const phantom = () => [
    "--egress-phantom-file",
    writeFile0600(path.join(workspace.ws.root, "phantom"), PHANTOM)
  ]
  const route = { upstream: "https://api.example.com", credential: { apiKey: "k" }, header: "x-api-key" }

  it("a bad routes file is exit 2 naming the route and the field", async () => {
    const cases: Array<[unknown, RegExp]> = [
      [
        { routes: { a: { ...route, upstream: "http://api.example.com" } } },
        /route a: field upstream must be an https URL/
      ],
      [{ routes: { a: { ...route, header: "connection" } } }, /route a: field header/],
      [{ routes: { a: { ...route, allow: ["POST /v1/*/x"] } } }, /route a: field allow\.0/],
      [
        { routes: { a: { ...route, credential: { token: "p", bucket: "../x" } } } },
        /route a: field credential/
      ],
      [{ routes: { a: { ...route, extra: 1 } } }, /route a: .*extra/],
      [{ routes: { "../a": route } }, /route name/],
      [{ routes: {} }, /"routes" is empty/]
    ]
    for (const [routes, message] of cases) {
      const result = await serveWith(routes, phantom())
      expect(result.code).toBe(2)
      expect(result.stderr).toMatch(message)
    }
  })

  it("egress mode without a phantom, or a listener off loopback, is exit 2", async () => {
    const none = await serveWith({ routes: { a: route } })
    expect(none.code).toBe(2)
    expect(none.stderr).toMatch(/needs a phantom/)
    const open = await serveWith({ routes: { a: route } }, [...phantom(), "--egress-listen", "0.0.0.0:8080"])
    expect(open.code).toBe(2)
    expect(open.stderr).toMatch(/--egress-listen "0.0.0.0:8080" is not a listener/)
    const badCa = writeFile0600(
      path.join(workspace.ws.root, "ca.pem"),
      "-----BEGIN CERTIFICATE-----\nnot base64\n"
    )
    const ca = await serveWith({ routes: { a: route } }, [...phantom(), "--egress-ca", badCa])
    expect(ca.code).toBe(2)
    expect(ca.stderr).toMatch(/CA file .* holds no usable PEM certificate/)
    const stray = await runCli(["serve", "--data-dir", workspace.ws.dataDir, "--egress-listen", "unix"])
    expect(stray.code).toBe(2)
    expect(fs.existsSync(workspace.ws.socketDir)).toBe(false)
  })
})

describe("egress: the log", () => {
  it("a trace-level log of egress traffic holds no credential, phantom, header value, body or query string", async () => {
    const { auth, close } = await startAuthServer()
    closers.push(close)
    writeFile0600(
      path.join(workspace.ws.root, "providers.json"),
      JSON.stringify({ providers: { oidc: { tokenEndpoint: auth.tokenEndpoint, clientId: "cli" } } })
    )
    const upstream = await upstreamOf(async (request, res) => {
      const bearer = String(request.headers.authorization ?? "").replace(/^Bearer /, "")
      const live = request.headers["x-api-key"] === REAL_KEY || (await auth.userinfoStatus(bearer)) === 200
      res.writeHead(live ? 200 : 401, { "x-answer-header": "answer-header-value-77" })
      res.end("answer-body-marker-55")
    })
    await setKey()
    const tokens = await auth.login("cli")
    const stale = {
      access_token: "revoked-access-token-for-the-log",
      token_type: tokens.token_type,
      refresh_token: tokens.refresh_token,
      expiry: Math.floor(Date.now() / 1000) + 3600
    }
    expect(
      (
        await runCli(["token", "import", "oidc", "--data-dir", workspace.ws.dataDir], {
          stdin: JSON.stringify(stale)
        })
      ).code
    ).toBe(0)
    const { server, egress } = await serveEgress(upstream, [
      "--providers",
      path.join(workspace.ws.root, "providers.json"),
      "--log-level",
      "trace",
      "--log-format",
      "json"
    ])
    const headers = { "x-custom": "header-value-marker-33", "content-type": "text/plain" }
    const sent = [
      await sandboxRequest(egress, {
        method: "POST",
        path: "/anthropic/v1/messages?query-marker-11=1",
        headers: { ...headers, "x-api-key": PHANTOM },
        body: "body-marker-22"
      }),
      await sandboxRequest(egress, {
        method: "POST",
        path: "/openai/v1/chat?query-marker-12=1",
        headers: { ...headers, authorization: `Bearer ${PHANTOM}` },
        body: "body-marker-23"
      }),
      await sandboxRequest(egress, {
        path: "/anthropic/v1/models?q=query-marker-13",
        headers: { "x-api-key": "wrong-phantom-44" }
      })
    ]
    expect(sent.map((answer) => answer.status)).toEqual([200, 200, 401])
    await until(
      () =>
        server
          .stderr()
          .split("\n")
          .filter((line) => line.includes('"message":"egress"')).length === 3,
      {
        what: "three audit lines"
      }
    )
    await server.stop()
    const log = server.stderr()
    const refreshed = String(upstream.received[2]!.headers.authorization).slice("Bearer ".length)
    for (const secret of [
      REAL_KEY,
      PHANTOM,
      tokens.access_token,
      tokens.refresh_token,
      stale.access_token,
      refreshed,
      "wrong-phantom-44",
      "header-value-marker-33",
      "answer-header-value-77",
      "body-marker-2",
      "answer-body-marker-55",
      "query-marker-1"
    ]) {
      expect(log).not.toContain(secret)
    }
    const audit = log
      .split("\n")
      .filter((line) => line.includes('"message":"egress"'))
      .map((line) => (JSON.parse(line) as { annotations: Record<string, unknown> }).annotations)
    expect(audit[0]).toMatchObject({
      route: "anthropic",
      method: "POST",
      path: "/v1/messages",
      status: 200,
      bytesIn: 14,
      bytesOut: Buffer.byteLength(sent[0]!.body)
    })
    expect(audit[0]!.bytesOut).toBeGreaterThan(0)
    expect(audit[1]).toMatchObject({ route: "openai", path: "/v1/chat", status: 200 })
    // A refusal's body is the proxy's own, not the upstream's: no bytes out.
    expect(audit[2]).toMatchObject({ route: "anthropic", path: "/v1/models", status: 401, bytesOut: 0 })
  })
})
