import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import * as path from "node:path"
import { performance } from "node:perf_hooks"
import { describe, expect, it } from "vitest"
import { encodeFrame } from "../../src/protocol/frame.js"
import { serverStatus, startServe, useCliWorkspace } from "../support/cli.js"
import { FrameClient } from "../support/frame-client.js"
import { poll, until } from "../support/until.js"

/**
 * PROTOCOL.md §22 against the real binary, for clients inside the policy
 * that try to stall or exhaust the server: listing in a loop, holding the
 * connection slots, never reading their answers, and a provider that echoes
 * a secret into its error answer.
 */

const workspace = useCliWorkspace()

const serveArgs = (...extra: Array<string>) => [
  "--data-dir",
  workspace.ws.dataDir,
  "--socket-dir",
  workspace.ws.socketDir,
  "--log-format",
  "json",
  ...extra
]

const open = async (socketPath: string, capabilityToken?: string): Promise<FrameClient> => {
  const client = await FrameClient.connect(socketPath)
  workspace.clients.push(client)
  const reply = await client.handshake({
    minVersion: 1,
    maxVersion: 1,
    ...(capabilityToken === undefined ? {} : { capabilityToken })
  })
  expect(reply.ok).toBe(true)
  return client
}

/** Writes token files the way the store lays them out (directories 0700, files 0600), without the CLI. */
const plantTokens = (providers: number, pad = 0) => {
  const tokens = path.join(workspace.ws.dataDir, "tokens")
  fs.mkdirSync(tokens, { recursive: true, mode: 0o700 })
  fs.chmodSync(workspace.ws.dataDir, 0o700)
  for (let i = 0; i < providers; i++) {
    const dir = path.join(tokens, `p${i}`)
    fs.mkdirSync(dir, { mode: 0o700 })
    const token = {
      access_token: `at-${i}`,
      expiry: 2_000_000_000,
      token_type: "Bearer",
      pad: "x".repeat(pad)
    }
    fs.writeFileSync(path.join(dir, "default.json"), JSON.stringify(token), { mode: 0o600 })
  }
}

describe("a client listing in a loop (§22)", () => {
  it("does not hold up a good client: its get_token is answered while 1,000 providers are being listed", async () => {
    plantTokens(1_000)
    const server = await startServe(serveArgs("--rate-limit", "0"))
    const lister = await open(server.socketPath)
    const good = await open(server.socketPath)
    // The first listing reads 1,000 directories (nothing is cached yet). A listing that held up the
    // server would answer the good client only after it; a listing that yields lets it through.
    let firstListed = false
    const first = lister.request("list_providers").then((reply) => {
      firstListed = true
      return reply
    })
    let answeredMeanwhile = 0
    for (let i = 0; i < 1_000 && !firstListed; i++) {
      expect((await good.request("get_token", { provider: `p${i}` })).ok).toBe(true)
      if (!firstListed) answeredMeanwhile++
    }
    expect((await first).data.providers).toHaveLength(1_000)
    expect(answeredMeanwhile).toBeGreaterThan(0)
    // Then listings in a loop and the good client's requests both go on to their end.
    let listing = true
    let lists = 0
    const loop = (async () => {
      while (listing) {
        expect((await lister.request("list_providers")).data.providers).toHaveLength(1_000)
        lists++
      }
    })()
    for (let i = 0; i < 400; i++)
      expect((await good.request("get_token", { provider: `p${i}` })).ok).toBe(true)
    listing = false
    await loop
    expect(lists).toBeGreaterThan(0)
    expect(await server.stop()).toEqual({ code: 0, signal: null })
  })
})

describe("a process that keeps opening connections without the capability token (§22)", () => {
  it("does not starve a client that holds the token: it is served within 1 s, 40 times in a row", async () => {
    const tokenFile = path.join(workspace.ws.root, "capability")
    fs.writeFileSync(tokenFile, "the-right-capability-token\n", { mode: 0o600 })
    const server = await startServe(
      serveArgs("--capability-token-file", tokenFile, "--max-connections", "16", "--log-level", "error")
    )
    // Another process opens raw connections as fast as it can, 64 at a time, and never sends a byte.
    const flood = spawn(
      process.execPath,
      [
        "-e",
        `const net = require("node:net")
         const path = process.argv[1]
         const one = () => { const s = net.createConnection(path); s.on("error", () => {}); s.on("close", one) }
         for (let i = 0; i < 64; i++) one()`,
        server.socketPath
      ],
      { stdio: "ignore" }
    )
    try {
      await until(async () => (await serverStatus(server)).connections.rejected.evicted !== undefined, {
        what: "the flood to fill the handshake share"
      })
      for (let i = 0; i < 40; i++) {
        const started = performance.now()
        const client = await open(server.socketPath, "the-right-capability-token")
        const reply = await client.request("list_api_keys")
        expect(reply.ok).toBe(true)
        expect(performance.now() - started).toBeLessThan(1_000)
        client.close()
      }
    } finally {
      flood.kill("SIGKILL")
    }
    expect(await server.stop()).toEqual({ code: 0, signal: null })
  })
})

describe("clients that never read their answers (§22)", () => {
  it("20 of them hold at most 20 × 1 MiB of answers, however their answers come; none is dropped, readers are served", async () => {
    // 60 tokens of 40 KiB the server has not read yet: the first answers come from requests run as
    // fibers (more than 1 MiB of them per connection), later ones from the cache, inline.
    plantTokens(60, 40 * 1024)
    const server = await startServe(serveArgs("--rate-limit", "0"))
    const hoarders = await Promise.all(Array.from({ length: 20 }, () => open(server.socketPath)))
    for (const [n, hoarder] of hoarders.entries()) {
      hoarder.socket.pause()
      const frames = Array.from({ length: 60 }, (_, i) =>
        encodeFrame(
          JSON.stringify({ v: 1, id: `h${n}-${i}`, op: "get_token", payload: { provider: `p${i}` } })
        )
      )
      hoarder.sendRaw(Buffer.concat(frames))
    }
    // Every hoarder ends up held back, its work done: the server waits for it to read, and drops nothing.
    let mostHeld = 0
    const settled = await poll(
      () => serverStatus(server),
      (status) => {
        mostHeld = Math.max(mostHeld, status.connections.heldAnswerBytes)
        const { peerNotReading, answersHeld } = status.connections.paused
        return peerNotReading + answersHeld === 20 && status.requestsInFlight === 0
      },
      { limitMs: 20_000, what: "every hoarder held back with nothing in flight" }
    )
    expect(mostHeld).toBeLessThanOrEqual(20 * 1024 * 1024)
    expect(settled.value.connections.heldAnswerBytes).toBeLessThanOrEqual(20 * 1024 * 1024)
    expect(settled.value.connections.open).toBe(20)
    // A client that reads gets every answer.
    const reader = await open(server.socketPath)
    const replies = await Promise.all(
      Array.from({ length: 60 }, (_, i) => reader.request("get_token", { provider: `p${i}` }))
    )
    expect(replies.every((reply) => reply.ok === true)).toBe(true)
    expect(await server.stop()).toEqual({ code: 0, signal: null })
  })
})

describe("a provider that echoes the refresh token in its error answer (§22)", () => {
  it("the refresh token appears in no log line at any level, and the answer is a plain INTERNAL_ERROR", async () => {
    const refreshToken = `rt-ECHOED-SECRET-${Date.now()}`
    const provider = http.createServer((request, response) => {
      let body = ""
      request.on("data", (chunk: Buffer) => {
        body += chunk.toString("utf8")
      })
      request.on("end", () => {
        const presented = new URLSearchParams(body).get("refresh_token") ?? ""
        response.writeHead(400, { "content-type": "application/json" })
        response.end(JSON.stringify({ error: presented, error_description: `bad token ${presented}` }))
      })
    })
    await new Promise<void>((resolve) => provider.listen(0, "127.0.0.1", resolve))
    try {
      const port = (provider.address() as AddressInfo).port
      const providersFile = path.join(workspace.ws.root, "providers.json")
      fs.writeFileSync(
        providersFile,
        JSON.stringify({
          providers: { echo: { tokenEndpoint: `http://127.0.0.1:${port}/token`, clientId: "c" } }
        }),
        { mode: 0o600 }
      )
      plantTokens(0)
      const dir = path.join(workspace.ws.dataDir, "tokens", "echo")
      fs.mkdirSync(dir, { mode: 0o700 })
      fs.writeFileSync(
        path.join(dir, "default.json"),
        JSON.stringify({
          access_token: "at-old",
          expiry: 1,
          token_type: "Bearer",
          refresh_token: refreshToken
        }),
        { mode: 0o600 }
      )
      const server = await startServe(serveArgs("--providers", providersFile, "--log-level", "trace"))
      const client = await open(server.socketPath)
      const reply = await client.request("refresh_token", { provider: "echo" })
      expect(reply).toMatchObject({
        ok: false,
        code: "INTERNAL_ERROR",
        error: "provider did not complete the refresh"
      })
      expect(JSON.stringify(reply)).not.toContain("ECHOED")
      expect(await server.stop()).toEqual({ code: 0, signal: null })
      const log = server.stderr()
      expect(log).toContain("unrecognized")
      expect(log).not.toContain("ECHOED")
      expect(server.stdout()).not.toContain("ECHOED")
    } finally {
      provider.close()
    }
  })
})
