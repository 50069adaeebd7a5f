import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import * as Effect from "effect/Effect"
import { errorCode } from "../../errors/errors.js"
import { peerCredReader, preload, socketFd } from "../../layers/native/peer-credentials.js"
import { type Check, type Finding, fail, ok, warn } from "./check.js"

const NAME = "peer-credentials"
const REINSTALL = "reinstall credproxy's dependencies (npm ci) so that koffi matches this platform"

/**
 * Connects to a socket of its own in a fresh temporary directory and asks
 * the kernel who the peer is, exactly as the server does for every
 * connection (PROTOCOL.md §9): the answer must be this process's uid.
 */
const probe = (read: NonNullable<ReturnType<typeof peerCredReader>>) =>
  Effect.async<Finding>((resume) => {
    let dir: string
    try {
      dir = fs.mkdtempSync(path.join(fs.realpathSync(os.tmpdir()), "cpd-"))
    } catch (error) {
      const where = os.tmpdir()
      resume(
        Effect.succeed(
          fail(NAME, `cannot make a test socket in ${where} (${errorCode(error)})`, `check ${where}`)
        )
      )
      return
    }
    const socketPath = path.join(dir, "p.sock")
    let client: net.Socket | undefined
    const cleanUp = () => {
      client?.destroy()
      server.close()
      fs.rmSync(dir, { recursive: true, force: true })
    }
    const done = (finding: Finding) => {
      cleanUp()
      resume(Effect.succeed(finding))
    }
    const server = net.createServer((accepted) => {
      const fd = socketFd(accepted)
      const result = fd === undefined ? undefined : read(fd)
      accepted.destroy()
      const own = process.getuid?.()
      if (result === undefined) done(fail(NAME, "no file descriptor for an accepted socket", REINSTALL))
      else if (result._tag === "Failed") done(fail(NAME, result.message, REINSTALL))
      else if (result.uid !== own)
        done(fail(NAME, `the kernel says uid ${result.uid}, expected ${own}`, REINSTALL))
      else done(ok(NAME, `the kernel names each peer (uid ${result.uid} for this process)`))
    })
    server.on("error", (error: NodeJS.ErrnoException) =>
      done(fail(NAME, `cannot listen on a test socket (${error.code})`, `check ${os.tmpdir()}`))
    )
    server.listen(socketPath, () => {
      client = net.createConnection(socketPath)
      client.on("error", () => {})
    })
    return Effect.sync(cleanUp)
  })

/** Whether the server can check each peer's uid here: the native call loads, and answers. */
export const peerCredentialsCheck: Check = {
  name: NAME,
  run: () =>
    Effect.suspend(() => {
      const read = peerCredReader()
      if (read === undefined || process.getuid === undefined) {
        return Effect.succeed([
          warn(
            NAME,
            `peer credentials cannot be checked on ${process.platform}; the socket's mode 0600 is the only gate`,
            "keep the socket directory private to you (mode 0700), or run the proxy on Linux or macOS"
          )
        ])
      }
      const loadError = preload()
      if (loadError !== undefined) return Effect.succeed([fail(NAME, loadError, REINSTALL)])
      return Effect.map(probe(read), (finding) => [finding])
    })
}
