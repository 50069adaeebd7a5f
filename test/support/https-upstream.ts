import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as https from "node:https"
import type { AddressInfo } from "node:net"
import * as os from "node:os"
import * as path from "node:path"

/**
 * A real HTTPS server on loopback for the egress tests, with a CA of its own
 * made at test time by the openssl command (so the proxy trusts it only
 * through `--egress-ca`). Every request it receives is recorded: method,
 * path, headers and body.
 */

export interface Received {
  readonly method: string
  readonly url: string
  readonly headers: Readonly<Record<string, string | Array<string> | undefined>>
  readonly body: Buffer
}

export interface Upstream {
  readonly origin: string
  /** The PEM file of its CA. */
  readonly caFile: string
  readonly received: Array<Received>
  /** Requests that reached the handler, complete or not. */
  readonly started: () => number
  /** Requests whose connection closed before the handler answered in full. */
  readonly aborted: () => number
  readonly close: () => Promise<void>
}

export type UpstreamHandler = (
  request: Received,
  res: import("node:http").ServerResponse,
  req: import("node:http").IncomingMessage
) => void | Promise<void>

/** A CA and a certificate for 127.0.0.1 signed by it, in a fresh directory. */
export const makeCertificates = (): { dir: string; caFile: string; keyFile: string; certFile: string } => {
  const dir = fs.mkdtempSync(path.join(fs.realpathSync(os.tmpdir()), "cpca-"))
  const file = (name: string) => path.join(dir, name)
  const openssl = (...args: Array<string>) => execFileSync("openssl", args, { stdio: "pipe" })
  openssl(
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-days",
    "2",
    "-subj",
    "/CN=credproxy test CA",
    "-keyout",
    file("ca.key"),
    "-out",
    file("ca.pem")
  )
  openssl(
    "req",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-subj",
    "/CN=127.0.0.1",
    "-keyout",
    file("server.key"),
    "-out",
    file("server.csr")
  )
  fs.writeFileSync(file("ext.cnf"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n")
  openssl(
    "x509",
    "-req",
    "-in",
    file("server.csr"),
    "-CA",
    file("ca.pem"),
    "-CAkey",
    file("ca.key"),
    "-CAcreateserial",
    "-days",
    "2",
    "-extfile",
    file("ext.cnf"),
    "-out",
    file("server.pem")
  )
  return { dir, caFile: file("ca.pem"), keyFile: file("server.key"), certFile: file("server.pem") }
}

/** Starts the upstream; `handler` answers after the body has been read (or, with `streaming`, at once). */
export const startUpstream = async (
  handler: UpstreamHandler,
  options: { readonly streaming?: boolean } = {}
): Promise<Upstream> => {
  const certs = makeCertificates()
  const received: Array<Received> = []
  let started = 0
  let aborted = 0
  const server = https.createServer(
    { key: fs.readFileSync(certs.keyFile), cert: fs.readFileSync(certs.certFile) },
    (req, res) => {
      started++
      res.once("close", () => {
        if (!res.writableFinished) aborted++
      })
      const base = { method: req.method ?? "", url: req.url ?? "", headers: { ...req.headers } }
      if (options.streaming === true) {
        const request = { ...base, body: Buffer.alloc(0) }
        received.push(request)
        void handler(request, res, req)
        return
      }
      const chunks: Array<Buffer> = []
      req.on("data", (chunk: Buffer) => chunks.push(chunk))
      req.on("end", () => {
        const request = { ...base, body: Buffer.concat(chunks) }
        received.push(request)
        void handler(request, res, req)
      })
    }
  )
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  return {
    origin: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
    caFile: certs.caFile,
    received,
    started: () => started,
    aborted: () => aborted,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => {
          fs.rmSync(certs.dir, { recursive: true, force: true })
          resolve()
        })
      })
  }
}
