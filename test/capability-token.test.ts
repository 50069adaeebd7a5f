import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import { readCapabilityTokenFile } from "../src/config/capability-token-file.js"
import { FrameClient } from "./support/frame-client.js"
import { startServer, tempDir } from "./support/server.js"

const SECRET = "cap-0123456789abcdef"

const handshakeWith = (socketPath: string, payload: Record<string, unknown>) =>
  Effect.promise(async () => {
    const client = await FrameClient.connect(socketPath)
    const reply = await client.handshake({ minVersion: 1, maxVersion: 1, ...payload })
    return { client, reply }
  })

describe("capability token (PROTOCOL.md §9, §14)", () => {
  it.scoped("the right token opens the connection", () =>
    Effect.gen(function* () {
      const server = yield* startServer({ capabilityToken: SECRET })
      const { client, reply } = yield* handshakeWith(server.socketPath, { capabilityToken: SECRET })
      expect(reply).toEqual({ v: 1, op: "handshake", ok: true, data: { version: 1 } })
      expect((yield* Effect.promise(() => client.request("list_api_keys"))).ok).toBe(true)
      client.close()
    })
  )

  const refused: ReadonlyArray<[string, Record<string, unknown>]> = [
    ["none", {}],
    ["wrong", { capabilityToken: "cap-0123456789abcdeX" }],
    ["wrong length", { capabilityToken: `${SECRET}0` }],
    ["a prefix", { capabilityToken: SECRET.slice(0, 8) }],
    ["empty", { capabilityToken: "" }],
    ["with surrounding whitespace", { capabilityToken: ` ${SECRET}\n` }],
    ["a number", { capabilityToken: 12345 }],
    ["an object", { capabilityToken: { token: SECRET } }]
  ]
  for (const [name, payload] of refused) {
    it.scoped(`${name}: UNAUTHORIZED, then closed; the token is not logged`, () =>
      Effect.gen(function* () {
        const server = yield* startServer({ capabilityToken: SECRET })
        const { client, reply } = yield* handshakeWith(server.socketPath, payload)
        expect(reply).toMatchObject({ v: 1, op: "handshake", ok: false, code: "UNAUTHORIZED" })
        yield* Effect.promise(() => client.waitClosed())
        expect(JSON.stringify(server.audit)).not.toContain(SECRET.slice(4))
        expect(server.status().connections.rejected.capability_token).toBe(1)
      })
    )
  }

  it.scoped("a token sent only after the handshake does not help: the connection is already closed", () =>
    Effect.gen(function* () {
      const server = yield* startServer({ capabilityToken: SECRET })
      const client = yield* Effect.promise(() => FrameClient.connect(server.socketPath))
      client.send({ v: 1, op: "handshake", payload: { minVersion: 1, maxVersion: 1 } })
      client.send({ v: 1, id: "late", op: "list_api_keys", payload: { capabilityToken: SECRET } })
      yield* Effect.promise(() => client.waitClosed())
      expect(client.pending).toHaveLength(1)
      expect(client.pending[0]).toMatchObject({ op: "handshake", ok: false, code: "UNAUTHORIZED" })
    })
  )

  it.scoped("the version range is checked before the token", () =>
    Effect.gen(function* () {
      const server = yield* startServer({ capabilityToken: SECRET })
      const { reply } = yield* handshakeWith(server.socketPath, { minVersion: 3, maxVersion: 3 })
      expect(reply.code).toBe("UNKNOWN_VERSION")
    })
  )

  it.scoped("without a configured token, a presented one is ignored", () =>
    Effect.gen(function* () {
      const server = yield* startServer()
      const { client, reply } = yield* handshakeWith(server.socketPath, { capabilityToken: "anything" })
      expect(reply.ok).toBe(true)
      client.close()
    })
  )
})

describe("capability token file", () => {
  it.scoped(
    "is read without surrounding whitespace; group/other-readable, empty or missing files are refused",
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir()
        const good = path.join(dir, "good")
        fs.writeFileSync(good, `${SECRET}\n`, { mode: 0o600 })
        expect(yield* readCapabilityTokenFile(good)).toBe(SECRET)
        const open = path.join(dir, "open")
        fs.writeFileSync(open, SECRET, { mode: 0o644 })
        fs.chmodSync(open, 0o644)
        const empty = path.join(dir, "empty")
        fs.writeFileSync(empty, " \n", { mode: 0o600 })
        for (const [file, words] of [
          [open, "644"],
          [empty, "empty"],
          [path.join(dir, "missing"), "cannot be read (ENOENT)"],
          [dir, "not a regular file"]
        ] as const) {
          const result = yield* Effect.exit(readCapabilityTokenFile(file))
          expect(Exit.isFailure(result)).toBe(true)
          const text = JSON.stringify(result)
          expect(text).toContain(words)
          expect(text).not.toContain(SECRET)
        }
      })
  )
})
