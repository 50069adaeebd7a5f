import type { AdminStatusData } from "../server/admin/admin-status.js"

/**
 * `credproxy status` as text for people: one block per running server,
 * lines kept within 100 columns (long lists are cut with "…"). Pure: the
 * command decides where it goes and how often.
 */

const WIDTH = 100

const fit = (line: string): string => (line.length <= WIDTH ? line : `${line.slice(0, WIDTH - 1)}…`)

/** `3h05m`, `4m12s`, `9s`. */
export const duration = (seconds: number): string => {
  const s = Math.max(0, Math.round(seconds))
  if (s < 60) return `${s}s`
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`
}

const clockTime = (ms: number): string => new Date(ms).toISOString().slice(11, 19)

const list = (items: ReadonlyArray<string>, empty: string) => (items.length === 0 ? empty : items.join(" "))

const counts = (byOp: Readonly<Record<string, number>>): string =>
  list(
    Object.entries(byOp).map(([op, n]) => `${op} ${n}`),
    "no requests"
  )

const onOff = (on: boolean) => (on ? "on" : "off")

const fieldsText = (fields: Readonly<Record<string, unknown>> | undefined): string =>
  fields === undefined
    ? ""
    : ` ${Object.entries(fields)
        .map(([key, value]) => `${key}=${typeof value === "string" ? value : JSON.stringify(value)}`)
        .join(" ")}`

export const renderStatus = (server: AdminStatusData): Array<string> => {
  const { counters } = server
  const refused = Object.values(counters.connections.rejected).reduce((a, b) => a + b, 0)
  const lines = [
    `credproxy pid ${server.pid}, up ${duration(server.uptimeSeconds)}`,
    `  socket   ${server.sockets.sandbox}`,
    `  options  restrict ${onOff(server.restrict)}, confirm ${onOff(server.confirm)}, capability token ${onOff(server.capabilityToken)}`,
    `  policy   tokens: allow ${list(server.policy.allow, "*")}; deny ${list(server.policy.deny, "none")}`,
    `           keys: allow ${list(server.policy.allowKeys, "*")}; deny ${list(server.policy.denyKeys, "none")}`,
    `  connections: ${counters.connections.open} open, ${counters.connections.total} since start, ${refused} refused; ${counters.requestsInFlight} requests in flight`
  ]
  for (const connection of server.connections) {
    const who = `pid ${connection.peerPid ?? "?"} uid ${connection.peerUid ?? "?"}`
    const version = connection.version === undefined ? "no handshake" : `v${connection.version}`
    lines.push(
      `    ${who}  ${version}  since ${clockTime(connection.connectedAt)}  ${counts(connection.requests)}`
    )
  }
  if (server.refresh.length > 0) lines.push("  refresh:")
  for (const key of server.refresh) {
    const parts = [
      key.expiresInSeconds === undefined
        ? undefined
        : key.expiresInSeconds < 0
          ? `expired ${duration(-key.expiresInSeconds)} ago`
          : `expires in ${duration(key.expiresInSeconds)}`,
      key.lastRefreshSecondsAgo === undefined
        ? undefined
        : `refreshed ${duration(key.lastRefreshSecondsAgo)} ago`,
      key.cooldownSeconds === undefined ? undefined : `cooldown ${duration(key.cooldownSeconds)}`
    ].filter((part) => part !== undefined)
    lines.push(`    ${key.key}  ${parts.join(", ")}`)
  }
  if (server.waiting.length > 0) lines.push("  waiting for approval (credproxy approve):")
  for (const waiting of server.waiting) {
    lines.push(
      `    ${waiting.id}  pid ${waiting.peerPid ?? "?"} wants ${waiting.credential} (${waiting.op}), ${waiting.secondsLeft}s left`
    )
  }
  if (server.audit.length > 0) lines.push("  recent events:")
  for (const line of server.audit) {
    lines.push(
      `    ${clockTime(line.at)} ${line.level.toLowerCase()} ${line.message}${fieldsText(line.fields)}`
    )
  }
  return lines.map(fit)
}
