import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { runCli, startServe, useCliWorkspace } from "../support/cli.js"
import { FrameClient } from "../support/frame-client.js"

/**
 * PROTOCOL.md §22 against the real binary: every command, `providers list`
 * included, makes the data directory's checks before it reads anything in it
 * (a regular file where the data directory belongs, a `tokens` directory that
 * is a symbolic link: exit 2), token files are written as compact JSON, and a
 * link where a token or key file belongs refuses the write.
 */

const workspace = useCliWorkspace()

const token = (fields: Record<string, unknown> = {}) => ({
  access_token: "at-real",
  expiry: 2_000_000_000,
  token_type: "Bearer",
  refresh_token: "rt-real",
  ...fields
})

const data = () => ["--data-dir", workspace.ws.dataDir]
const socketDir = () => ["--socket-dir", workspace.ws.socketDir]

/** Every command, each with what it needs to get as far as the data directory. */
const everyCommand = (): ReadonlyArray<{ readonly args: ReadonlyArray<string>; readonly stdin?: string }> => [
  { args: ["token", "import", "p", ...data()], stdin: JSON.stringify(token()) },
  { args: ["token", "show", "p", ...data()] },
  { args: ["token", "list", ...data()] },
  { args: ["token", "remove", "p", ...data()] },
  { args: ["token", "refresh", "p", ...data()] },
  { args: ["key", "set", "k", ...data()], stdin: "sk-1" },
  { args: ["key", "list", ...data()] },
  { args: ["key", "remove", "k", ...data()] },
  { args: ["providers", "list", ...data()] },
  { args: ["serve", ...data(), ...socketDir()] },
  { args: ["exec", ...data(), ...socketDir(), "--", "true"] }
]

/** Runs every command and expects each to exit 2 with `message` on stderr and nothing on stdout. */
const expectEveryCommandRefused = async (message: string) => {
  for (const { args, stdin } of everyCommand()) {
    const result = await runCli(args, stdin === undefined ? {} : { stdin })
    const what = `${args.slice(0, 2).join(" ")}: ${result.stderr}`
    expect(result.code, what).toBe(2)
    expect(result.stderr, what).toContain(message)
    expect(result.stdout, what).toBe("")
  }
}

describe("the data directory's checks, for every command (§22)", () => {
  it("a regular file where the data directory belongs: exit 2, `is not a directory`, the file left alone", async () => {
    fs.writeFileSync(workspace.ws.dataDir, "not a directory")
    await expectEveryCommandRefused(
      `data directory ${workspace.ws.dataDir} is not a directory; remove it or choose another with --data-dir`
    )
    expect(fs.readFileSync(workspace.ws.dataDir, "utf8")).toBe("not a directory")
  })

  it("`tokens` a symbolic link to a directory outside: exit 2, `is a symbolic link inside the store`", async () => {
    const outside = path.join(workspace.ws.root, "outside")
    fs.mkdirSync(outside, { mode: 0o700 })
    fs.mkdirSync(workspace.ws.dataDir, { mode: 0o700 })
    fs.symlinkSync(outside, path.join(workspace.ws.dataDir, "tokens"))
    await expectEveryCommandRefused(
      `data directory ${path.join(workspace.ws.dataDir, "tokens")} is a symbolic link inside the store`
    )
    expect(fs.readdirSync(outside)).toEqual([])
  })

  it("providers list refuses a data directory open to others, and leaves a missing one missing", async () => {
    const missing = await runCli(["providers", "list", ...data()])
    expect(missing).toMatchObject({ code: 0, stdout: "" })
    expect(fs.existsSync(workspace.ws.dataDir)).toBe(false)
    fs.mkdirSync(workspace.ws.dataDir, { mode: 0o700 })
    fs.writeFileSync(
      path.join(workspace.ws.dataDir, "providers.json"),
      JSON.stringify({ providers: { planted: { clientId: "c", tokenEndpoint: "https://evil.example/t" } } })
    )
    expect(await runCli(["providers", "list", ...data()])).toMatchObject({ code: 0, stdout: "planted\n" })
    fs.chmodSync(workspace.ws.dataDir, 0o777)
    const refused = await runCli(["providers", "list", ...data()])
    expect(refused.code).toBe(2)
    expect(refused.stderr).toContain(`data directory ${workspace.ws.dataDir} has mode 777`)
    expect(refused.stdout).toBe("")
  })
})

describe("token files as stored (§22)", () => {
  it("a token nested 2,000 deep is written as its compact JSON and served back", async () => {
    const nested = JSON.parse(`${'{"a":'.repeat(2_000)}1${"}".repeat(2_000)}`) as unknown
    const stored = token({ nested })
    const compact = JSON.stringify(stored)
    const imported = await runCli(["token", "import", "deep", ...data()], { stdin: compact })
    expect(imported.code, imported.stderr).toBe(0)
    const file = path.join(workspace.ws.dataDir, "tokens", "deep", "default.json")
    expect(fs.readFileSync(file, "utf8")).toBe(compact)
    const server = await startServe([...data(), ...socketDir()])
    const client = await FrameClient.open(server.socketPath)
    workspace.clients.push(client)
    const { refresh_token: _kept, ...served } = stored
    const reply = await client.request("get_token", { provider: "deep" })
    expect(reply.ok).toBe(true)
    // Compared as text: matchers recurse once per level.
    expect(JSON.stringify(reply.data)).toBe(JSON.stringify(served))
    expect(await server.stop()).toEqual({ code: 0, signal: null })
  })
})

describe("a symbolic link where the store writes (§22)", () => {
  it("save_token over a token link and key set over a key link are refused; the links and their targets stay", async () => {
    const imported = await runCli(["token", "import", "p", ...data()], { stdin: JSON.stringify(token()) })
    expect(imported.code, imported.stderr).toBe(0)
    const target = path.join(workspace.ws.root, "target")
    fs.writeFileSync(target, "OUTSIDE")
    const tokenFile = path.join(workspace.ws.dataDir, "tokens", "p", "default.json")
    const keyFile = path.join(workspace.ws.dataDir, "keys", "k.key")
    fs.rmSync(tokenFile)
    fs.symlinkSync(target, tokenFile)
    fs.mkdirSync(path.dirname(keyFile), { mode: 0o700 })
    fs.symlinkSync(target, keyFile)

    const keySet = await runCli(["key", "set", "k", ...data()], { stdin: "sk-new" })
    expect(keySet.code).toBe(1)
    expect(keySet.stderr).toContain("a symbolic link is where a file of the store belongs")
    // The warning goes to stderr with the command's own message; stdout carries only answers.
    expect(keySet.stderr).toContain("symbolic link in the store ignored")
    expect(keySet.stdout).toBe("")
    const shown = await runCli(["token", "show", "p", ...data()])
    expect(shown.code).toBe(1)
    expect(shown.stderr).toContain("symbolic link in the store ignored")
    expect(shown.stdout).toBe("")
    const server = await startServe([...data(), ...socketDir(), "--log-format", "json"])
    const client = await FrameClient.open(server.socketPath)
    workspace.clients.push(client)
    const saved = await client.request("save_token", { provider: "p", token: token() })
    expect(saved).toMatchObject({ ok: false, code: "INTERNAL_ERROR" })
    expect(await server.stop()).toEqual({ code: 0, signal: null })

    const warned = server
      .stderr()
      .split("\n")
      .filter((line) => line.includes("symbolic link in the store ignored"))
      .map((line) => (JSON.parse(line) as { annotations: { entry: string } }).annotations.entry)
    expect([...new Set(warned)]).toEqual(["tokens/p/default.json"])
    expect(server.stderr()).not.toContain(target)
    for (const file of [tokenFile, keyFile]) expect(fs.lstatSync(file).isSymbolicLink()).toBe(true)
    expect(fs.readFileSync(target, "utf8")).toBe("OUTSIDE")
  })
})
