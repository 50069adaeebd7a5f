import type { EgressRoute } from "../../config/egress-routes.js"
import { HOP_BY_HOP_HEADERS } from "../../protocol/hop-by-hop.js"

/** The names a `connection` header lists: hop-by-hop for this message too. */
const listedIn = (connection: string | undefined): ReadonlySet<string> | undefined =>
  connection === undefined
    ? undefined
    : new Set(connection.split(",").map((name) => name.trim().toLowerCase()))

/**
 * The sandbox's headers as the upstream gets them (a flat name, value list):
 * hop-by-hop ones, `host` and `expect` dropped, the route header replaced by
 * the real credential, and any other header that carries the phantom dropped,
 * so the phantom never leaves the host.
 */
export const upstreamHeaders = (
  raw: ReadonlyArray<string>,
  route: EgressRoute,
  credential: string,
  phantom: string
): Array<string> => {
  const out: Array<string> = []
  let listed: ReadonlySet<string> | undefined
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.toLowerCase() === "connection") listed = listedIn(raw[i + 1])
  }
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase()
    const value = raw[i + 1]!
    if (HOP_BY_HOP_HEADERS.has(name) || name === "host" || name === "expect" || name === route.header)
      continue
    if (listed?.has(name) === true || value.includes(phantom)) continue
    out.push(name, value)
  }
  out.push(route.header, route.scheme === undefined ? credential : `${route.scheme} ${credential}`)
  return out
}

/** The upstream's headers as the sandbox gets them: every one but the hop-by-hop ones. */
export const sandboxHeaders = (
  headers: Readonly<Record<string, string | ReadonlyArray<string> | undefined>>
): Record<string, string | Array<string>> => {
  const connection = headers.connection
  const listed = listedIn(typeof connection === "string" ? connection : undefined)
  const out: Record<string, string | Array<string>> = {}
  for (const name in headers) {
    const value = headers[name]
    if (value === undefined || HOP_BY_HOP_HEADERS.has(name) || listed?.has(name) === true) continue
    out[name] = typeof value === "string" ? value : [...value]
  }
  return out
}
