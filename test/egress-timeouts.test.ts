import * as fs from "node:fs"
import * as net from "node:net"
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as FileKeyStorage from "../src/layers/FileKeyStorage.js"
import { runServer } from "../src/server/run-server.js"
import { codeOf, PHANTOM, sandboxRequest } from "./support/egress.js"
import { startUpstream } from "./support/https-upstream.js"
import { tempDir } from "./support/server.js"

/**
 * The egress timeouts (504), on the library's server with its bounds lowered
 * (5 min of upstream silence cannot be waited for in a test); everything else
 * is real: the HTTP listener, undici, TLS with the test CA, the file store.
 */

const withEgress = (upstream: string, ca: string, tuning: Record<string, number>) =>
  Effect.gen(function* () {
    const root = yield* tempDir()
    const dataDir = path.join(root, "data")
    fs.mkdirSync(dataDir, { mode: 0o700 })
    yield* Effect.scoped(
      Effect.flatMap(FileKeyStorage.make(dataDir), (keys) => keys.set("k", "real-key"))
    ).pipe(Effect.orDie)
    const server = yield* runServer(
      {
        dataDir,
        socketDir: path.join(root, "s"),
        logLevel: "error",
        egress: {
          routes: [
            {
              name: "slow",
              origin: upstream,
              basePath: "",
              credential: { kind: "apiKey", name: "k" },
              header: "x-api-key",
              scheme: undefined,
              allow: undefined,
              env: {}
            }
          ],
          phantom: PHANTOM,
          listen: { kind: "tcp", host: "127.0.0.1", port: 0 },
          ca,
          tuning
        }
      },
      {}
    )
    return server.egress!.url
  })

describe("egress timeouts", () => {
  it.scopedLive("an upstream silent past the idle bound is 504", () =>
    Effect.gen(function* () {
      const upstream = yield* Effect.acquireRelease(
        Effect.promise(() => startUpstream(() => {})),
        (u) => Effect.promise(() => u.close())
      )
      const egress = yield* withEgress(upstream.origin, fs.readFileSync(upstream.caFile, "utf8"), {
        idleTimeoutMs: 300
      })
      const answer = yield* Effect.promise(() =>
        sandboxRequest(egress, { path: "/slow/v1", headers: { "x-api-key": PHANTOM } })
      )
      expect(answer.status).toBe(504)
      expect(codeOf(answer)).toBe("INTERNAL_ERROR")
      expect(upstream.started()).toBe(1)
    })
  )

  it.scopedLive("an upstream that accepts but never completes TLS is 504 after the connect bound", () =>
    Effect.gen(function* () {
      const sockets: Array<net.Socket> = []
      const mute = yield* Effect.acquireRelease(
        Effect.promise(
          () =>
            new Promise<net.Server>((resolve) => {
              const server = net.createServer((socket) => sockets.push(socket))
              server.listen(0, "127.0.0.1", () => resolve(server))
            })
        ),
        (server) =>
          Effect.sync(() => {
            for (const socket of sockets) socket.destroy()
            server.close()
          })
      )
      const port = (mute.address() as net.AddressInfo).port
      const ca = yield* Effect.acquireRelease(
        Effect.promise(() => startUpstream(() => {})),
        (u) => Effect.promise(() => u.close())
      )
      const egress = yield* withEgress(`https://127.0.0.1:${port}`, fs.readFileSync(ca.caFile, "utf8"), {
        connectTimeoutMs: 300
      })
      const answer = yield* Effect.promise(() =>
        sandboxRequest(egress, { path: "/slow/v1", headers: { "x-api-key": PHANTOM } })
      )
      expect(answer.status).toBe(504)
      expect(JSON.parse(answer.body).error.message).toBe("upstream did not accept the connection in time")
    })
  )
})
