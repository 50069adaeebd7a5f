import * as path from "node:path"
import type { PipeTargets } from "./byte-pipe.js"

/** Where `forward` listens when `--listen` is not given: the port `exec --print-env` writes into the URLs. */
export const DEFAULT_FORWARD_PORT = 8787

const LOOPBACK = /^127(?:\.(?:25[0-5]|2[0-4]\d|1?\d?\d)){3}$/

/**
 * The `--listen` and `--to` of `forward`, checked: a loopback `HOST:PORT` and
 * `unix:/absolute/path`. The problem is the option and what it needs, never
 * more (no Effect here: `forward` loads nothing it does not use).
 */
export const parseForwardTargets = (
  listen: string,
  to: string
): { readonly targets: PipeTargets } | { readonly option: string; readonly value: string } => {
  const match = /^(.+):(\d{1,5})$/.exec(listen)
  const host = match?.[1] ?? ""
  const port = Number(match?.[2])
  if (!LOOPBACK.test(host) || !(port <= 65535)) return { option: "--listen", value: listen }
  const socketPath = to.startsWith("unix:") ? to.slice("unix:".length) : ""
  if (!path.isAbsolute(socketPath)) return { option: "--to", value: to }
  return { targets: { host, port, socketPath } }
}

export const FORWARD_FIX =
  "give --listen 127.0.0.1:PORT (a loopback address of the container) and --to unix:/abs/path.sock"
