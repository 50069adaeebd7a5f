import * as Either from "effect/Either"
import { UsageError } from "../errors/usage.js"

/** Where the egress proxy listens (docs/PROTOCOL.md §23): a loopback port, or an HTTP Unix socket in the socket directory. */
export type EgressListen =
  | { readonly kind: "unix" }
  | { readonly kind: "tcp"; readonly host: string; readonly port: number }

const LOOPBACK = /^127(?:\.\d{1,3}){3}$/

/** Parses `unix` or `127.x.y.z:PORT` (port 0 = any free); anything off loopback is refused. */
export const parseLoopbackAddress = (
  value: string,
  option: string
): Either.Either<{ readonly host: string; readonly port: number }, UsageError> => {
  const match = /^(.+):(\d{1,5})$/.exec(value)
  const host = match?.[1]
  const port = Number(match?.[2])
  if (
    host === undefined ||
    !LOOPBACK.test(host) ||
    host.split(".").some((part) => Number(part) > 255) ||
    port > 65535
  ) {
    return Either.left(new UsageError({ reason: "EgressListen", subject: option, detail: value }))
  }
  return Either.right({ host, port })
}

export const parseEgressListen = (value: string): Either.Either<EgressListen, UsageError> =>
  value === "unix"
    ? Either.right({ kind: "unix" })
    : Either.map(parseLoopbackAddress(value, "--egress-listen"), (address) => ({ kind: "tcp", ...address }))
