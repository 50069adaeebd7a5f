import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import {
  ConnectionLost,
  ProtocolViolation,
  ProxyResponseError,
  ProxyUnavailable,
  RequestTimeout
} from "../src/client/errors.js"
import {
  NotFound,
  ProviderNotFound,
  ReauthRequired,
  RefreshCooldown,
  RefreshFailure,
  StoreFailure,
  StoreOperation,
  StoreTimeout
} from "../src/errors/errors.js"
import { DataDirRefused, ServerStartError, StartReason } from "../src/errors/startup.js"
import { UsageError, UsageReason } from "../src/errors/usage.js"
import { WireCode } from "../src/protocol/wire-codes.js"
import { runCli, useCliWorkspace } from "./support/cli.js"

/**
 * The message audit (issue 15): every error that ends a command with exit 1
 * or 2, and every error of the client, says what happened and what to do,
 * and none is empty. Each class is walked over every reason it can be built
 * with, so a reason added later is checked too.
 */

const SUBJECT = "SUBJECT-7f3a"
const DETAIL = "DETAIL-2c9e"

/** A message that says what happened and what to do: two non-empty parts, no placeholder left. */
const expectExplained = (message: string, explained?: { what: string; fix: string }) => {
  expect(message.trim()).not.toBe("")
  expect(message).not.toMatch(/undefined|\[object /)
  if (explained !== undefined) {
    expect(explained.what.trim()).not.toBe("")
    expect(explained.fix.trim()).not.toBe("")
    expect(message).toContain(explained.what)
    expect(message).toContain(explained.fix)
  }
}

describe("command-line errors (exit 2)", () => {
  for (const reason of UsageReason.literals) {
    it(`UsageError ${reason}: names the option or file and says what to do`, () => {
      const error = new UsageError({ reason, subject: SUBJECT, detail: DETAIL })
      expectExplained(error.message, error.explained)
      expect(error.explained.what + error.explained.fix).toContain(SUBJECT)
    })
  }

  for (const reason of StartReason.literals) {
    it(`ServerStartError ${reason}: names the directory or socket and says what to do`, () => {
      const error = new ServerStartError({ reason, subject: SUBJECT, detail: DETAIL })
      expectExplained(error.message, error.explained)
      expect(error.explained.what).toContain(SUBJECT)
    })
  }

  for (const problem of DataDirRefused.fields.problem.literals) {
    it(`DataDirRefused ${problem}: names the directory and says what to do`, () => {
      const error = new DataDirRefused({ dir: SUBJECT, problem, uid: 65534, mode: 0o777 })
      expectExplained(error.message, error.explained)
      expect(error.explained.what).toContain(SUBJECT)
    })
  }
})

describe("errors that end a command with exit 1", () => {
  it("NotFound names what is missing and where to look", () => {
    for (const what of NotFound.fields.what.literals) {
      const error = new NotFound({ what, name: SUBJECT })
      expectExplained(error.message)
      expect(error.message).toContain(SUBJECT)
      expect(error.message).toMatch(/credproxy (token|key) list/)
    }
  })

  it("StoreFailure, every reason and operation: what failed and what to do", () => {
    for (const reason of StoreFailure.fields.reason.literals) {
      for (const operation of StoreOperation.literals) {
        const error = new StoreFailure({ operation, reason, code: "EIO" })
        expectExplained(error.message)
        expect(error.message).toContain(operation)
        expect(error.message).toMatch(/; \S/)
      }
    }
    expect(new StoreTimeout({ operation: "get" }).message).toMatch(/in time; retry/)
  })

  it("refresh errors name the provider and say what to do", () => {
    for (const reason of RefreshFailure.fields.reason.literals) {
      const error = new RefreshFailure({ provider: SUBJECT, reason, kind: "Network", code: "ECONNREFUSED" })
      expectExplained(error.message)
      expect(error.message).toContain(SUBJECT)
      expect(error.message).toMatch(/; \S/)
    }
    expect(new ProviderNotFound({ provider: SUBJECT }).message).toMatch(/SUBJECT-7f3a.*providers file/)
    for (const reason of ReauthRequired.fields.reason.literals) {
      expect(new ReauthRequired({ reason }).message).toMatch(/log in again/)
    }
    expect(new RefreshCooldown({ retryAfter: 12 }).message).toMatch(/retry in 12 s/)
  })
})

describe("client errors", () => {
  for (const reason of ProxyUnavailable.fields.reason.literals) {
    it(`ProxyUnavailable ${reason}: what happened and what to do`, () => {
      for (const code of [undefined, "ENOENT", "ECONNREFUSED", "EACCES", "ENAMETOOLONG", "UNAUTHORIZED"]) {
        const error = new ProxyUnavailable({
          reason,
          socket: SUBJECT,
          detail: DETAIL,
          ...(code === undefined ? {} : { code })
        })
        expectExplained(error.message, error.explained)
        expect(error.message).toMatch(/^Credential proxy unavailable: /)
        if (reason === "Connect") expect(error.message).toContain(SUBJECT)
      }
    })
  }

  it("ProxyResponseError, every wire code: the code, the proxy's text and what to do", () => {
    for (const code of Object.values(WireCode)) {
      const error = new ProxyResponseError({ op: "get_token", code, reason: DETAIL, retryAfter: 3 })
      expectExplained(error.message)
      expect(error.message).toContain(code)
      expect(error.message).toContain(DETAIL)
      if (code !== "CANCELLED" && !code.startsWith("SESSION_") && code !== "EXCHANGE_FAILED") {
        expect(error.message, code).toMatch(/; \S/)
      }
    }
    expect(
      new ProxyResponseError({ op: "x", code: "RATE_LIMITED", reason: "r", retryAfter: 1 }).message
    ).toMatch(/retry in 1 s/)
  })

  it("timeouts, lost connections and protocol violations say what to do", () => {
    expectExplained(new RequestTimeout({ op: "get_token" }).message)
    expect(new RequestTimeout({ op: "get_token" }).message).toMatch(/get_token.*log on the host/)
    expect(new ConnectionLost().message).toMatch(/Restart the session/)
    for (const reason of ProtocolViolation.fields.reason.literals) {
      expect(new ProtocolViolation({ reason }).message).toMatch(/Restart the session/)
    }
  })
})

describe("every error is built with a reason the walk above covers", () => {
  it("no UsageError or ServerStartError is built from free text anywhere in src", () => {
    const sources = (fs.readdirSync("src", { recursive: true }) as Array<string>)
      .filter((file) => file.endsWith(".ts"))
      .map((file) => fs.readFileSync(path.join("src", file), "utf8"))
    for (const source of sources) {
      for (const match of source.matchAll(
        /new (UsageError|ServerStartError)\(\{\s*reason(:\s*([^,}\s]+))?/g
      )) {
        // A literal reason, or a variable typed as the reason union (checked by the compiler).
        expect(match[3] ?? "reason", match[0]).toMatch(/^("[A-Za-z]+"|reason)$/)
      }
    }
  })
})

describe("through the binary: a bad argument ends with where the usage is (exit 2)", () => {
  useCliWorkspace()
  const cases: ReadonlyArray<ReadonlyArray<string>> = [
    ["serve", "--rate-limit", "abc"],
    ["serve", "--log-level", "loud"],
    ["serve", "--frobnicate"],
    ["token", "show"],
    ["token", "frobnicate"],
    ["frobnicate"],
    ["key", "set"]
  ]
  for (const args of cases) {
    it(`credproxy ${args.join(" ")}`, async () => {
      const result = await runCli(args)
      expect(result.code).toBe(2)
      const lines = result.stderr.split("\n").filter((line) => line.trim() !== "")
      // @effect/cli's line says what is wrong; ours says where to look.
      expect(lines.length).toBeGreaterThanOrEqual(2)
      expect(lines[lines.length - 1]).toMatch(
        /^credproxy: see 'credproxy[a-z ]*--help' for the usage and examples$/
      )
    })
  }
})
