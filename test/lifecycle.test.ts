import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Scope from "effect/Scope"
import * as TestClock from "effect/TestClock"
import * as FileTokenStore from "../src/layers/FileTokenStore.js"
import { encodeFrame } from "../src/protocol/frame.js"
import { PeerVerifier } from "../src/services/PeerVerifier.js"
import { FrameClient } from "./support/frame-client.js"
import { startServer, type TestServer, type TestServerOptions, tempDir } from "./support/server.js"
import { gatedStores, type StoreCalls } from "./support/stores.js"
import { awaitTimer } from "./support/test-clock.js"
import { until } from "./support/until.js"

const open = (socketPath: string) => Effect.promise(() => FrameClient.open(socketPath))
const isRoot = process.getuid?.() === 0

/** Starts a server in its own scope so the test can stop it while watching. */
const startStoppable = (options: TestServerOptions) =>
  Effect.gen(function* () {
    const scope = yield* Scope.make()
    const server = yield* startServer(options).pipe(Scope.extend(scope))
    return { server, scope }
  })

const connectFails = (socketPath: string) =>
  Effect.promise(() =>
    FrameClient.connect(socketPath).then(
      () => false,
      () => true
    )
  )

describe("socket file (PROTOCOL.md §2)", () => {
  it.scoped("named llxprt-cred-{pid}-{nonce}.sock, mode 0600 in a 0700 dir, removed on stop", () =>
    Effect.gen(function* () {
      const { server, scope } = yield* startStoppable({})
      expect(path.basename(server.socketPath)).toMatch(
        new RegExp(`^llxprt-cred-${process.pid}-[0-9a-f]{8}\\.sock$`)
      )
      expect(fs.statSync(server.socketPath).mode & 0o777).toBe(0o600)
      expect(fs.statSync(server.socketDir).mode & 0o777).toBe(0o700)
      yield* Scope.close(scope, Exit.void)
      expect(fs.existsSync(server.socketPath)).toBe(false)
    })
  )

  it.scoped("refuses a socket dir that is group/other accessible, a symlink, or gives too long a path", () =>
    Effect.gen(function* () {
      const root = yield* tempDir()
      const open = path.join(root, "open")
      fs.mkdirSync(open, { mode: 0o755 })
      fs.chmodSync(open, 0o755)
      const link = path.join(root, "link")
      const real = path.join(root, "real")
      fs.mkdirSync(real, { mode: 0o700 })
      fs.symlinkSync(real, link)
      const deep = path.join(root, "d".repeat(100))
      for (const [dir, words] of [
        [open, "755"],
        [link, "symbolic link"],
        [deep, "107 bytes"]
      ] as const) {
        const result = yield* Effect.exit(
          Effect.scoped(startServer({ config: { socketDir: dir } }).pipe(Effect.orDie))
        )
        expect(Exit.isFailure(result)).toBe(true)
        expect(failureMessage(result)).toContain(words)
      }
    })
  )

  it.scoped.skipIf(!isRoot)("refuses a socket dir owned by another uid (needs root to chown)", () =>
    Effect.gen(function* () {
      const root = yield* tempDir()
      const foreign = path.join(root, "foreign")
      fs.mkdirSync(foreign, { mode: 0o700 })
      fs.chownSync(foreign, 65534, 65534)
      const result = yield* Effect.exit(Effect.scoped(startServer({ config: { socketDir: foreign } })))
      expect(failureMessage(result)).toContain("owned by uid 65534")
    })
  )
})

/** The message of the error (or defect) an exit failed with: what the user reads. */
const failureMessage = (exit: Exit.Exit<unknown, unknown>): string =>
  Exit.isFailure(exit) ? (Cause.squash(exit.cause) as Error).message : ""

describe("who may connect (PROTOCOL.md §9)", () => {
  // Only root can start a child process as another uid; as any other user this test cannot run.
  it.scoped.skipIf(!isRoot)("a peer with another uid is closed before any frame is read or answered", () =>
    Effect.gen(function* () {
      const server = yield* startServer()
      fs.chmodSync(path.dirname(server.socketDir), 0o711)
      fs.chmodSync(server.socketDir, 0o711)
      fs.chmodSync(server.socketPath, 0o666)
      const script = `
        const net = require("net");
        const s = net.createConnection(${JSON.stringify(server.socketPath)});
        const hs = Buffer.from(JSON.stringify({ v: 1, op: "handshake", payload: { minVersion: 1, maxVersion: 1 } }));
        const h = Buffer.alloc(4); h.writeUInt32BE(hs.length);
        let got = 0, connected = false;
        s.on("connect", () => { connected = true; s.write(Buffer.concat([h, hs])); });
        s.on("data", (d) => { got += d.length; });
        s.on("error", () => {});
        s.on("close", () => { process.stdout.write(JSON.stringify({ connected, got })); process.exit(0); });
        setTimeout(() => { process.stdout.write(JSON.stringify({ got, open: true })); process.exit(0); }, 10000);
      `
      const output = yield* Effect.promise(
        () =>
          new Promise<string>((resolve) => {
            const child = spawn(process.execPath, ["-e", script], { uid: 65534, gid: 65534, cwd: "/" })
            let out = ""
            child.stdout.on("data", (d) => {
              out += d
            })
            child.on("exit", () => resolve(out))
          })
      )
      expect(JSON.parse(output)).toEqual({ connected: true, got: 0 })
      expect(
        server.audit.events.some((e) => e.message.includes("peer uid") && e.fields?.peerUid === 65534)
      ).toBe(true)
      const ours = yield* open(server.socketPath)
      expect((yield* Effect.promise(() => ours.request("list_api_keys"))).ok).toBe(true)
      ours.close()
    })
  )

  it.scoped("connections past --max-connections are closed at once without a frame; served ones go on", () =>
    Effect.gen(function* () {
      const server = yield* startServer({ config: { maxConnections: 2 } })
      const first = yield* open(server.socketPath)
      const second = yield* open(server.socketPath)
      const third = yield* Effect.promise(() => FrameClient.connect(server.socketPath))
      yield* Effect.promise(() => third.waitClosed())
      expect(third.pending).toEqual([])
      expect((yield* Effect.promise(() => first.request("list_api_keys"))).ok).toBe(true)
      second.close()
      yield* Effect.promise(() => until(() => server.status().connections.open === 1))
      const fourth = yield* open(server.socketPath)
      expect((yield* Effect.promise(() => fourth.request("list_api_keys"))).ok).toBe(true)
      expect(server.audit.events.some((e) => e.message.includes("too many connections"))).toBe(true)
      first.close()
      fourth.close()
    })
  )
})

/** A server holding a ~60 KB token: a few unread answers fill the socket buffers. */
// The rate limit is off: these tests send a thousand requests in one burst.
const startServerWithBigToken = Effect.tap(startServer({ rateLimit: 0 }), (server) =>
  Effect.scoped(
    Effect.flatMap(FileTokenStore.make(server.dataDir), (store) =>
      store.save(
        { provider: "big", bucket: "default" },
        { access_token: "a", expiry: 1, token_type: "Bearer", pad: "p".repeat(60_000) }
      )
    )
  )
)

const bigTokenRequest = (id: string) =>
  encodeFrame(JSON.stringify({ v: 1, id, op: "get_token", payload: { provider: "big" } }))

const answeredGetTokens = (server: TestServer) => () => server.status().requests.get_token?.ok ?? 0

describe("a client that does not read its answers", () => {
  it.scoped(
    "the server stops handling its frames instead of piling up answers, then serves all of them",
    () =>
      Effect.gen(function* () {
        const server = yield* startServerWithBigToken
        const client = yield* open(server.socketPath)
        // Read once, so the token is in the server's cache and every answer is sent inline.
        expect((yield* Effect.promise(() => client.request("get_token", { provider: "big" }))).ok).toBe(true)
        client.socket.pause()
        const count = 1000
        const frames = Array.from({ length: count }, (_, i) => bigTokenRequest(`b${i}`))
        client.sendRaw(Buffer.concat(frames))
        const answered = answeredGetTokens(server)
        // The server stops handling frames once its answers are not taken.
        yield* Effect.promise(() => until(() => server.status().connections.paused.peerNotReading === 1))
        // At most a few reads' worth of answers wait in buffers, not all 60 MB of them.
        expect(answered()).toBeLessThan(200)
        expect(server.status().connections.heldAnswerBytes).toBeLessThanOrEqual(1024 * 1024)
        client.socket.resume()
        yield* Effect.promise(() => until(() => client.pending.length === count, { limitMs: 20_000 }))
        expect(answered()).toBe(count + 1)
        client.close()
      })
  )
})

describe("a client that does not read while its next frame is still arriving", () => {
  it.scoped("is not closed by the partial-frame deadline while the server itself waits to write", () =>
    Effect.gen(function* () {
      const server = yield* startServerWithBigToken
      const client = yield* open(server.socketPath)
      client.socket.pause()
      const frame = (i: number) => bigTokenRequest(`w${i}`)
      const answered = answeredGetTokens(server)
      // Each write: the rest of frame i and the first 6 bytes of frame i+1, so every read ends inside a
      // frame. Go on until answers stop: the server is then waiting for us to read (a generous bound).
      client.sendRaw(frame(0).subarray(0, 6))
      let sent = 0
      for (; sent < 500; sent++) {
        const before = answered()
        client.sendRaw(Buffer.concat([frame(sent).subarray(6), frame(sent + 1).subarray(0, 6)]))
        const more = yield* Effect.promise(() =>
          until(() => answered() > before, { limitMs: 2_000 }).then(
            () => true,
            () => false
          )
        )
        if (!more) break
      }
      expect(sent).toBeLessThan(500)
      // Held back by the server, not waiting for the peer: no deadline runs, so none can close it.
      yield* Effect.promise(() => until(() => server.status().connections.paused.peerNotReading === 1))
      expect(server.status().deadlinesPending).toBe(0)
      yield* TestClock.adjust("6 seconds")
      expect(server.status().connections.open).toBe(1)
      client.socket.resume()
      client.sendRaw(frame(sent + 1).subarray(6))
      yield* Effect.promise(() => until(() => client.pending.length === sent + 2, { limitMs: 20_000 }))
      expect(server.status().connections.rejected.partial_frame_timeout).toBeUndefined()
      client.close()
    })
  )
})

describe("a client that half-closes without reading yet", () => {
  it.scoped("gets every answer once it reads, then the server closes", () =>
    Effect.gen(function* () {
      const server = yield* startServerWithBigToken
      const client = yield* open(server.socketPath)
      expect((yield* Effect.promise(() => client.request("get_token", { provider: "big" }))).ok).toBe(true)
      client.socket.pause()
      const count = 200
      const frames = Array.from({ length: count }, (_, i) => bigTokenRequest(`h${i}`))
      client.socket.end(Buffer.concat(frames))
      // The server holds back what it cannot write yet, and does not close meanwhile.
      yield* Effect.promise(() => until(() => server.status().connections.paused.peerNotReading === 1))
      expect(answeredGetTokens(server)()).toBeLessThan(count + 1)
      client.socket.resume()
      yield* Effect.promise(() => client.waitClosed(20_000))
      expect(client.pending.length).toBe(count)
    })
  )
})

describe("deadlines, backpressure and stop (PROTOCOL.md §5, §10)", () => {
  it.scoped("a store call that does not finish within 15 s answers INTERNAL_ERROR (TestClock)", () =>
    Effect.gen(function* () {
      const gate = yield* Deferred.make<void>()
      const server = yield* startServer({ stores: gatedStores(gate) })
      const client = yield* open(server.socketPath)
      client.send({ v: 1, id: "slow", op: "get_token", payload: { provider: "p" } })
      expect((yield* Effect.promise(() => client.request("list_api_keys"))).ok).toBe(true)
      yield* TestClock.adjust("14 seconds")
      expect(client.pending).toEqual([])
      yield* TestClock.adjust("1 second")
      const reply = yield* Effect.promise(() => client.frameWhere((f) => f.id === "slow"))
      expect(reply).toMatchObject({ ok: false, code: "INTERNAL_ERROR" })
      expect(reply.error).not.toMatch(/Error|at |stack/)
      client.close()
    })
  )

  it.scoped("reads pause while too many requests are in flight; nothing is dropped", () =>
    Effect.gen(function* () {
      const gate = yield* Deferred.make<void>()
      const calls: StoreCalls = { count: 0 }
      const server = yield* startServer({
        stores: gatedStores(gate, calls),
        config: { maxInFlightPerConnection: 2 }
      })
      const client = yield* open(server.socketPath)
      const frames = Array.from({ length: 10 }, (_, i) =>
        encodeFrame(JSON.stringify({ v: 1, id: `g${i}`, op: "get_token", payload: { provider: "p" } }))
      )
      client.sendRaw(Buffer.concat(frames))
      yield* Effect.promise(() => until(() => server.status().connections.paused.inFlightLimit === 1))
      expect(calls.count).toBe(2)
      // Frames held back by the server are not partial frames: no deadline runs, none closes the connection.
      expect(server.status().deadlinesPending).toBe(0)
      yield* TestClock.adjust("6 seconds")
      expect(server.status().connections.open).toBe(1)
      expect(calls.count).toBe(2)
      yield* Deferred.succeed(gate, undefined)
      for (let i = 0; i < 10; i++) {
        const reply = yield* Effect.promise(() => client.frameWhere((f) => f.id === `g${i}`))
        expect(reply.code).toBe("NOT_FOUND")
      }
      expect(calls.count).toBe(10)
      client.close()
    })
  )

  it.scoped("stop: refuses new connections, lets requests finish within the 5 s drain, then closes all", () =>
    Effect.gen(function* () {
      const gate = yield* Deferred.make<void>()
      const { server, scope } = yield* startStoppable({ stores: gatedStores(gate) })
      const client = yield* open(server.socketPath)
      client.send({ v: 1, id: "inflight", op: "get_token", payload: { provider: "p" } })
      expect((yield* Effect.promise(() => client.request("list_api_keys"))).ok).toBe(true)
      const stopping = yield* Effect.fork(Scope.close(scope, Exit.void))
      yield* awaitTimer(5_000)
      expect(yield* connectFails(server.socketPath)).toBe(true)
      yield* TestClock.adjust("3 seconds")
      yield* Deferred.succeed(gate, undefined)
      const reply = yield* Effect.promise(() => client.frameWhere((f) => f.id === "inflight"))
      expect(reply.code).toBe("NOT_FOUND")
      yield* Fiber.join(stopping)
      yield* Effect.promise(() => client.waitClosed())
      expect(fs.existsSync(server.socketPath)).toBe(false)
    })
  )

  it.scoped("stop: requests still running after the 5 s drain are interrupted and the server stops", () =>
    Effect.gen(function* () {
      const gate = yield* Deferred.make<void>()
      const { server, scope } = yield* startStoppable({ stores: gatedStores(gate) })
      const client = yield* open(server.socketPath)
      client.send({ v: 1, id: "stuck", op: "get_token", payload: { provider: "p" } })
      expect((yield* Effect.promise(() => client.request("list_api_keys"))).ok).toBe(true)
      const stopping = yield* Effect.fork(Scope.close(scope, Exit.void))
      yield* awaitTimer(5_000)
      yield* TestClock.adjust("4900 millis")
      expect(stopping.unsafePoll()).toBeNull()
      yield* TestClock.adjust("200 millis")
      yield* Fiber.join(stopping)
      yield* Effect.promise(() => client.waitClosed())
      expect(fs.existsSync(server.socketPath)).toBe(false)
    })
  )

  it.scoped("a response over 65536 bytes is never sent: INTERNAL_ERROR instead", () =>
    Effect.gen(function* () {
      const server = yield* startServer()
      yield* Effect.scoped(
        Effect.flatMap(FileTokenStore.make(server.dataDir), (store) =>
          store.save(
            { provider: "huge", bucket: "default" },
            {
              access_token: "a",
              expiry: 1,
              token_type: "Bearer",
              blob: "z".repeat(70_000)
            }
          )
        )
      )
      const client = yield* open(server.socketPath)
      const reply = yield* Effect.promise(() => client.request("get_token", { provider: "huge" }, "h"))
      expect(reply).toMatchObject({ id: "h", ok: false, code: "INTERNAL_ERROR" })
      client.close()
    })
  )
})

describe("containment of the accept path", () => {
  it.scoped("a peer check that throws closes that connection only; the server goes on serving", () =>
    Effect.gen(function* () {
      let calls = 0
      const flaky = Layer.succeed(PeerVerifier, {
        verify: () => {
          calls++
          if (calls === 1) throw new Error("native call failed")
          return { _tag: "Allowed" as const }
        }
      })
      const server = yield* startServer({ peers: flaky })
      const first = yield* Effect.promise(() => FrameClient.connect(server.socketPath))
      yield* Effect.promise(() => first.waitClosed())
      const second = yield* open(server.socketPath)
      expect((yield* Effect.promise(() => second.request("list_api_keys"))).ok).toBe(true)
      expect(server.status().connections.rejected.internal).toBe(1)
      expect(server.audit.events.some((e) => e.level === "Error" && e.message.includes("accepting"))).toBe(
        true
      )
      second.close()
    })
  )
})
