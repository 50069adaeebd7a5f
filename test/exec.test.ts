import { type ChildProcess, spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { until } from "./support/until.js"

const ROOT = path.resolve(import.meta.dirname, "..")
const BIN = path.join(ROOT, "bin", "credproxy.mjs")
const CLIENT = path.join(ROOT, "dist", "client.js")
const children: Array<ChildProcess> = []
const dirs: Array<string> = []

afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill("SIGKILL")
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true })
})

const setup = () => {
  const root = fs.mkdtempSync(path.join(fs.realpathSync(os.tmpdir()), "cpx-"))
  dirs.push(root)
  const dataDir = path.join(root, "data")
  const socketDir = path.join(root, "s")
  const env = { ...process.env, CREDPROXY_HOME: "", LLXPRT_CREDENTIAL_SOCKET: "", LLXPRT_CAPABILITY_FD: "" }
  const token = {
    access_token: "at-exec",
    expiry: 2_000_000_000,
    token_type: "Bearer",
    refresh_token: "rt-exec"
  }
  const imported = spawnSync(process.execPath, [BIN, "token", "import", "anthropic", "--data-dir", dataDir], {
    input: JSON.stringify(token),
    env
  })
  expect(imported.status).toBe(0)
  return { root, dataDir, socketDir, env }
}

/** `credproxy exec` with the test's own data and socket directories. */
const execIn = (dataDir: string, socketDir: string) => [
  "exec",
  "--data-dir",
  dataDir,
  "--socket-dir",
  socketDir
]

interface Run {
  readonly child: ChildProcess
  readonly stdout: () => string
  readonly stderr: () => string
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

const run = (args: ReadonlyArray<string>, env: NodeJS.ProcessEnv): Run => {
  const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ["ignore", "pipe", "pipe"] })
  children.push(child)
  let out = ""
  let err = ""
  child.stdout?.on("data", (d) => {
    out += d
  })
  child.stderr?.on("data", (d) => {
    err += d
  })
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("exit", (code, signal) => resolve({ code, signal }))
  )
  return { child, stdout: () => out, stderr: () => err, exited }
}

/** The inner program: reads its capability token from fd 3, checks the environment, fetches a token. */
const innerScript = `
const fs = require("fs");
const fd = process.env.LLXPRT_CAPABILITY_FD;
const capability = fs.readFileSync(3, "utf8");
const leaked = Object.values(process.env).some((v) => v && capability && v.includes(capability));
import(${JSON.stringify(CLIENT)}).then(async (m) => {
  const store = new m.ProxyTokenStore({ capabilityToken: capability });
  const token = await store.getToken("anthropic");
  const refused = await new m.ProxyTokenStore({ capabilityToken: "not-the-token" }).getToken("anthropic").catch((e) => e.code ?? e._tag);
  process.stdout.write(JSON.stringify({ token, leaked, fd, capabilityFormat: /^[0-9a-f]{64}\\n$/.test(capability), refused }));
  await store.dispose();
  process.exit(7);
});
`

describe("credproxy exec (PROTOCOL.md §13, §14)", () => {
  it("runs CMD with the socket and the capability token on fd 3, and exits with CMD's status", async () => {
    const { dataDir, socketDir, env } = setup()
    const r = run(
      [...execIn(dataDir, socketDir), "--capability-token", "--", process.execPath, "-e", innerScript],
      env
    )
    const { code } = await r.exited
    expect(code).toBe(7)
    const report = JSON.parse(r.stdout())
    expect(report.token).toEqual({ access_token: "at-exec", expiry: 2_000_000_000, token_type: "Bearer" })
    expect(report.leaked).toBe(false)
    expect(report.fd).toBe("3")
    // 32 random bytes as 64 lowercase hex characters and a newline: what the coding CLI's reader expects (§21).
    expect(report.capabilityFormat).toBe(true)
    expect(report.refused).toBe("UNAUTHORIZED")
    expect(r.stderr()).toContain("llxprt-cred-")
    expect(fs.readdirSync(socketDir)).toEqual([])
  })

  it("the factory store reads the token from LLXPRT_CAPABILITY_FD by itself", async () => {
    const { dataDir, socketDir, env } = setup()
    const script = `import(${JSON.stringify(CLIENT)}).then(async (m) => {
      const token = await m.createTokenStore().getToken("anthropic");
      process.stdout.write(JSON.stringify({ token, fd: process.env.LLXPRT_CAPABILITY_FD ?? null }));
    })`
    const r = run(
      [...execIn(dataDir, socketDir), "--capability-token", "--", process.execPath, "-e", script],
      env
    )
    expect((await r.exited).code).toBe(0)
    expect(JSON.parse(r.stdout())).toEqual({
      token: { access_token: "at-exec", expiry: 2_000_000_000, token_type: "Bearer" },
      fd: null
    })
  })

  it("SIGTERM to credproxy is forwarded: CMD stops, the socket is removed, status 128+15", async () => {
    const { dataDir, socketDir, env } = setup()
    const r = run(
      [
        ...execIn(dataDir, socketDir),
        "--",
        process.execPath,
        "-e",
        "process.stdout.write('up'); setInterval(() => {}, 1000)"
      ],
      env
    )
    await until(() => r.stdout() === "up", { limitMs: 10_000, what: "the child to start" })
    expect(fs.readdirSync(socketDir)).toHaveLength(1)
    r.child.kill("SIGTERM")
    const { code } = await r.exited
    expect(code).toBe(143)
    expect(fs.readdirSync(socketDir)).toEqual([])
  })

  it("a CMD that handles the forwarded SIGINT and exits 0 makes credproxy exit 0", async () => {
    const { dataDir, socketDir, env } = setup()
    const script =
      "process.on('SIGINT', () => process.exit(0)); process.stdout.write('up'); setInterval(() => {}, 1000)"
    const r = run([...execIn(dataDir, socketDir), "--", process.execPath, "-e", script], env)
    await until(() => r.stdout() === "up", { limitMs: 10_000, what: "the child to start" })
    r.child.kill("SIGINT")
    expect((await r.exited).code).toBe(0)
  })

  it("127 with a message when CMD cannot be started; 2 without a CMD", async () => {
    const { dataDir, socketDir, env } = setup()
    const missing = run([...execIn(dataDir, socketDir), "--", "/nonexistent/cmd"], env)
    expect((await missing.exited).code).toBe(127)
    expect(missing.stderr()).toContain("cannot start /nonexistent/cmd")
    const none = run(execIn(dataDir, socketDir), env)
    expect((await none.exited).code).toBe(2)
    expect(none.stderr()).toContain("no command given")
  })

  it("--print-env prints what a container needs, then serves until stopped", async () => {
    const { dataDir, socketDir, env } = setup()
    const r = run([...execIn(dataDir, socketDir), "--print-env", "--capability-token"], env)
    await until(() => r.stdout().includes("podman run"), { limitMs: 10_000, what: "the printed environment" })
    const lines = r.stdout().split("\n")
    const socket = lines.find((l) => l.startsWith("LLXPRT_CREDENTIAL_SOCKET="))?.split("=")[1]
    const tokenFile = lines.find((l) => l.startsWith("LLXPRT_CAPABILITY_FILE="))?.split("=")[1]
    expect(socket && fs.existsSync(socket)).toBe(true)
    expect(tokenFile && (fs.statSync(tokenFile).mode & 0o777) === 0o600).toBe(true)
    expect(r.stdout()).toContain(`docker run -v ${socketDir}:${socketDir}`)
    const script = `import(${JSON.stringify(CLIENT)}).then(async (m) => process.stdout.write(JSON.stringify(await m.createTokenStore().getToken("anthropic"))))`
    const inner = spawnSync(process.execPath, ["-e", script], {
      env: { ...env, LLXPRT_CREDENTIAL_SOCKET: socket, LLXPRT_CAPABILITY_FILE: tokenFile }
    })
    expect(JSON.parse(inner.stdout.toString()).access_token).toBe("at-exec")
    r.child.kill("SIGTERM")
    expect((await r.exited).code).toBe(0)
    expect(fs.readdirSync(socketDir)).toEqual([])
  })
})

describe("factories without a proxy (PROTOCOL.md §15)", () => {
  it("createTokenStore / createProviderKeyStorage use the local file store and are shared instances", () => {
    const { dataDir, env } = setup()
    const script = `import(${JSON.stringify(CLIENT)}).then(async (m) => {
      const store = m.createTokenStore();
      const same = (await store) === store && m.createTokenStore() === store;
      const token = await store.getToken("anthropic");
      await store.saveToken("openai", { access_token: "at-local", expiry: 1, token_type: "Bearer", refresh_token: "rt-local" });
      const keys = m.createProviderKeyStorage();
      await keys.saveKey("k", "v");
      process.stdout.write(JSON.stringify({ same, token, saved: await store.getToken("openai"), key: await keys.getKey("k") }));
    })`
    const result = spawnSync(process.execPath, ["-e", script], { env: { ...env, CREDPROXY_HOME: dataDir } })
    expect(result.status).toBe(0)
    const report = JSON.parse(result.stdout.toString())
    expect(report.same).toBe(true)
    expect(report.token.refresh_token).toBe("rt-exec")
    expect(report.saved.refresh_token).toBe("rt-local")
    expect(report.key).toBe("v")
  })
})

describe("credproxy/client stays small (PROTOCOL.md §15)", () => {
  it("loads no server, native, file-store or OAuth code until a factory picks the local store", () => {
    const seen = new Set<string>()
    const walk = (file: string) => {
      if (seen.has(file)) return
      seen.add(file)
      const source = fs.readFileSync(file, "utf8")
      for (const match of source.matchAll(/^import\s[^;]*?from\s*"([^"]+)"|^import\s*"([^"]+)"/gm)) {
        const specifier = match[1] ?? match[2]
        if (specifier?.startsWith(".")) walk(path.resolve(path.dirname(file), specifier))
      }
    }
    walk(CLIENT)
    const loaded = [...seen].map((file) => fs.readFileSync(file, "utf8")).join("\n")
    for (const marker of [
      "koffi",
      "SO_PEERCRED",
      "createServer(",
      "proper-lockfile",
      "oauth4webapi",
      "refresh_token grant"
    ]) {
      expect(loaded, marker).not.toContain(marker)
    }
  })
})
