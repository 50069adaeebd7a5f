import * as fs from "node:fs"
import * as http from "node:http"
import * as path from "node:path"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import { type AuthServer, authServer } from "./auth-server.js"

/** Helpers for the egress tests: the routes file, the phantom file, and a sandbox-side HTTP client. */

export const PHANTOM = "phantom-0123456789abcdef0123456789abcdef"

export const writeFile0600 = (file: string, text: string): string => {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 })
  fs.writeFileSync(file, text, { mode: 0o600 })
  return file
}

/**
 * The `serve` arguments of egress mode on the test workspace: the routes file, the phantom
 * (written to a 0600 file; the default has no newline), and the upstream's CA.
 */
export const egressServeArgs = (
  ws: { readonly dataDir: string; readonly socketDir: string; readonly root: string },
  routes: string,
  caFile: string,
  phantomText: string = PHANTOM
): Array<string> => [
  "--data-dir",
  ws.dataDir,
  "--socket-dir",
  ws.socketDir,
  "--egress",
  routes,
  "--egress-phantom-file",
  writeFile0600(path.join(ws.root, "phantom"), phantomText),
  "--egress-ca",
  caFile
]

export interface SandboxAnswer {
  readonly status: number
  readonly headers: http.IncomingHttpHeaders
  readonly body: string
}

/** Where the sandbox reaches the egress proxy: the ready line's `egress` (http URL or `unix:` path). */
export const target = (egress: string): { host?: string; port?: number; socketPath?: string } => {
  if (egress.startsWith("unix:")) return { socketPath: egress.slice("unix:".length) }
  const url = new URL(egress)
  return { host: url.hostname, port: Number(url.port) }
}

/** One request as a provider SDK in the sandbox would make it. */
export const sandboxRequest = (
  egress: string,
  options: {
    readonly method?: string
    readonly path: string
    readonly headers?: Readonly<Record<string, string>>
    readonly body?: string | Buffer
  }
): Promise<SandboxAnswer> =>
  new Promise((resolve, reject) => {
    const req = http.request(
      {
        ...target(egress),
        method: options.method ?? "GET",
        path: options.path,
        headers: options.headers,
        agent: false
      },
      (res) => {
        const chunks: Array<Buffer> = []
        res.on("data", (chunk: Buffer) => chunks.push(chunk))
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString("utf8")
          })
        )
        res.on("error", reject)
      }
    )
    req.on("error", reject)
    req.end(options.body)
  })

/** The proxy's own error answer's code. */
export const codeOf = (answer: SandboxAnswer): string =>
  (JSON.parse(answer.body) as { error: { type: string; code: string } }).error.code

/** The real OAuth server of the refresh tests, outside an Effect test. */
export const startAuthServer = async (): Promise<{ auth: AuthServer; close: () => Promise<void> }> => {
  const scope = Effect.runSync(Scope.make())
  const auth = await Effect.runPromise(Scope.extend(authServer, scope))
  return { auth, close: () => Effect.runPromise(Scope.close(scope, Exit.void)) }
}
