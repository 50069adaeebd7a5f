import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { socketFd } from "../src/layers/native/peer-credentials.js"
import * as PeerVerifierAllowAll from "../src/layers/PeerVerifierAllowAll.js"
import * as PeerVerifierNative from "../src/layers/PeerVerifierNative.js"
import { type AuditLevel, AuditLog } from "../src/services/AuditLog.js"
import { PeerVerifier, type PeerVerifierShape } from "../src/services/PeerVerifier.js"

interface RecordedEvent {
  readonly level: AuditLevel
  readonly message: string
  readonly fields?: Readonly<Record<string, unknown>>
}

/** An AuditLog that keeps the events, so tests can see what the verifier warned about. */
const recordingAudit = () => {
  const events: Array<RecordedEvent> = []
  const layer = Layer.succeed(AuditLog, {
    requestsEnabled: false,
    request: () => {},
    event: (level, message, fields) => {
      events.push(fields === undefined ? { level, message } : { level, message, fields })
    }
  })
  return { events, layer }
}

/** Builds the verifier through its Layer, as the server does. */
const buildVerifier = (options: PeerVerifierNative.PeerVerifierOptions) => {
  const audit = recordingAudit()
  const verifier = Effect.runSync(
    Effect.provide(PeerVerifier, PeerVerifierNative.layer(options).pipe(Layer.provide(audit.layer)))
  )
  return { verifier, events: audit.events }
}

const supported = process.platform === "linux" || process.platform === "darwin"
const ownUid = process.getuid?.() ?? -1
const isRoot = ownUid === 0
const nobody = 65534

/** A real Unix socket server in a fresh temp dir; hands out the accepted sockets in order. */
const listen = async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "credproxy-peer-"))
  const socketPath = path.join(dir, "s")
  const sockets: Array<net.Socket> = []
  const waiting: Array<(socket: net.Socket) => void> = []
  const server = net.createServer((socket) => {
    sockets.push(socket)
    waiting.shift()?.(socket)
  })
  await new Promise<void>((resolve) => server.listen(socketPath, resolve))
  let next = 0
  return {
    dir,
    socketPath,
    /** The next accepted connection. */
    accepted: () => {
      const index = next++
      const ready = sockets[index]
      return ready !== undefined ? Promise.resolve(ready) : new Promise<net.Socket>((r) => waiting.push(r))
    },
    close: async () => {
      for (const socket of sockets) socket.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }
}

/** Connects from a separate `node` process that stays connected until the server closes the socket. */
const connectFromChild = (socketPath: string, cwd: string, ids?: { uid: number; gid: number }) =>
  spawn(
    process.execPath,
    [
      "-e",
      `const s = require("node:net").connect(process.argv[1]);
       s.on("close", () => process.exit(0));
       s.on("error", (e) => { console.error(e.message); process.exit(1) })`,
      socketPath
    ],
    { cwd, stdio: ["ignore", "ignore", "pipe"], ...ids }
  )

/** The accepted socket of `child`, or the reason the child could not connect. */
const acceptFrom = (child: ChildProcess, accepted: Promise<net.Socket>) => {
  let stderr = ""
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString()
  })
  const failed = new Promise<never>((_, reject) => {
    child.on("error", reject)
    child.on("exit", (code) => reject(new Error(`child exited (${code}) before connecting: ${stderr}`)))
  })
  return Promise.race([accepted, failed])
}

const verifyChildConnection = async (verifier: PeerVerifierShape, ids?: { uid: number; gid: number }) => {
  const server = await listen()
  let child: ChildProcess | undefined
  try {
    if (ids !== undefined) {
      // The child runs as another user: it needs to traverse the dir and write the socket.
      fs.chmodSync(server.dir, 0o711)
      fs.chmodSync(server.socketPath, 0o666)
    }
    child = connectFromChild(server.socketPath, server.dir, ids)
    const socket = await acceptFrom(child, server.accepted())
    return { check: verifier.verify(socket), pid: child.pid }
  } finally {
    await server.close()
    if (child !== undefined && child.exitCode === null) child.kill()
  }
}

describe("PeerVerifierNative", () => {
  it.skipIf(!supported)("allows a connection from this process, with our uid and pid", async () => {
    const { verifier, events } = buildVerifier({ allowUids: [] })
    const server = await listen()
    try {
      const client = net.connect(server.socketPath)
      const socket = await server.accepted()
      expect(socketFd(socket)).toBeGreaterThanOrEqual(0)
      expect(verifier.verify(socket)).toEqual({ _tag: "Allowed", uid: ownUid, pid: process.pid })
      client.destroy()
    } finally {
      await server.close()
    }
    expect(events).toEqual([])
  })

  it.skipIf(!supported)("reports the pid of a child process that connects", async () => {
    const { verifier } = buildVerifier({ allowUids: [] })
    const { check, pid } = await verifyChildConnection(verifier)
    expect(pid).toBeTypeOf("number")
    expect(check).toEqual({ _tag: "Allowed", uid: ownUid, pid })
  })

  // Connecting as another uid needs setuid in the child, which only root may do.
  it.skipIf(!supported || !isRoot)("rejects a peer running as another uid", async () => {
    const { verifier, events } = buildVerifier({ allowUids: [] })
    const { check, pid } = await verifyChildConnection(verifier, { uid: nobody, gid: nobody })
    expect(check).toEqual({ _tag: "Rejected", uid: nobody, expectedUid: 0, pid })
    // Logging the rejection is the server's job; the verifier only logs what it could not check.
    expect(events).toEqual([])
  })

  // Same reason as above: only root can start a child as another uid.
  it.skipIf(!supported || !isRoot)("allows another uid listed in allowUids", async () => {
    const { verifier } = buildVerifier({ allowUids: [nobody] })
    const { check, pid } = await verifyChildConnection(verifier, { uid: nobody, gid: nobody })
    expect(check).toEqual({ _tag: "Allowed", uid: nobody, pid })
  })

  it.skipIf(!supported)("fails closed on a socket without a file descriptor", () => {
    const { verifier, events } = buildVerifier({ allowUids: [] })
    const socket = new net.Socket()
    expect(socketFd(socket)).toBeUndefined()
    expect(verifier.verify(socket)).toEqual({ _tag: "Rejected", uid: -1, expectedUid: ownUid })
    expect(events).toHaveLength(1)
    expect(events[0]?.level).toBe("Warning")
  })

  it.skipIf(!supported)("fails closed when the kernel call fails (fd is not a socket)", () => {
    const { verifier, events } = buildVerifier({ allowUids: [] })
    const fd = fs.openSync(process.execPath, "r")
    try {
      // A stand-in with the one private field socketFd reads.
      const notASocket = { _handle: { fd } } as unknown as net.Socket
      expect(verifier.verify(notASocket)).toEqual({ _tag: "Rejected", uid: -1, expectedUid: ownUid })
    } finally {
      fs.closeSync(fd)
    }
    expect(events).toHaveLength(1)
    expect(events[0]?.level).toBe("Warning")
    expect(events[0]?.fields?.errno).toBeTypeOf("number")
  })

  it("warns once and allows everyone where peer credentials cannot be read", () => {
    const { verifier, events } = buildVerifier({ allowUids: [], platform: "win32" })
    expect(events).toHaveLength(1)
    expect(events[0]?.level).toBe("Warning")
    expect(events[0]?.message).toContain("file mode is the only gate")
    expect(verifier.verify(new net.Socket())).toEqual({ _tag: "Allowed" })
    expect(verifier.verify(new net.Socket())).toEqual({ _tag: "Allowed" })
    expect(events).toHaveLength(1)
  })
})

describe("PeerVerifierAllowAll", () => {
  it.effect("allows every peer", () =>
    Effect.gen(function* () {
      const verifier = yield* PeerVerifier
      expect(verifier.verify(new net.Socket())).toEqual({ _tag: "Allowed" })
    }).pipe(Effect.provide(PeerVerifierAllowAll.layer))
  )
})
