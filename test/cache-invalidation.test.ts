import { spawnSync } from "node:child_process"
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as TestClock from "effect/TestClock"
import { FrameClient } from "./support/frame-client.js"
import { startServer } from "./support/server.js"

const BIN = path.resolve(import.meta.dirname, "..", "bin", "credproxy.mjs")

/** Another process writing the store, as a user on the host would: the real CLI. */
const importToken = (dataDir: string, accessToken: string) => {
  const result = spawnSync(process.execPath, [BIN, "token", "import", "anthropic", "--data-dir", dataDir], {
    input: JSON.stringify({ access_token: accessToken, expiry: 2_000_000_000, token_type: "Bearer" }),
    env: { ...process.env, CREDPROXY_HOME: "" }
  })
  expect(result.status).toBe(0)
}

describe("store changes by another process are visible within 1 s (PROTOCOL.md §14)", () => {
  it.scoped(
    "an external token import, then a replacement, reach get_token once 1 s has passed (TestClock)",
    () =>
      Effect.gen(function* () {
        const server = yield* startServer()
        const client = yield* Effect.promise(() => FrameClient.open(server.socketPath))
        const get = () => Effect.promise(() => client.request("get_token", { provider: "anthropic" }))
        expect((yield* get()).code).toBe("NOT_FOUND")
        importToken(server.dataDir, "at-first")
        yield* TestClock.adjust("1 second")
        expect((yield* get()).data.access_token).toBe("at-first")
        importToken(server.dataDir, "at-second")
        yield* TestClock.adjust("1 second")
        expect((yield* get()).data.access_token).toBe("at-second")
        client.close()
      })
  )

  it.scoped("the server's own writes are visible at once", () =>
    Effect.gen(function* () {
      const server = yield* startServer()
      const client = yield* Effect.promise(() => FrameClient.open(server.socketPath))
      const token = { access_token: "at-own", expiry: 1, token_type: "Bearer" }
      expect((yield* Effect.promise(() => client.request("get_token", { provider: "p" }))).code).toBe(
        "NOT_FOUND"
      )
      yield* Effect.promise(() => client.request("save_token", { provider: "p", token }))
      expect((yield* Effect.promise(() => client.request("get_token", { provider: "p" }))).data).toEqual(
        token
      )
      yield* Effect.promise(() => client.request("remove_token", { provider: "p" }))
      expect((yield* Effect.promise(() => client.request("get_token", { provider: "p" }))).code).toBe(
        "NOT_FOUND"
      )
      client.close()
    })
  )
})
