import type { EgressSettings } from "../server/egress/egress-server.js"

/**
 * The variables `exec --egress` gives its command (docs/PROTOCOL.md §23):
 * `LLXPRT_EGRESS_URL` = the listener, and every route's `env` with `{url}` =
 * the route's base URL and `{phantom}` = the phantom. `base` is the listener
 * as the command reaches it (`http://127.0.0.1:PORT`, or the address of
 * `credproxy forward` inside a container).
 */
export const egressVariables = (settings: EgressSettings, base: string): Record<string, string> => {
  const variables: Record<string, string> = { LLXPRT_EGRESS_URL: base }
  for (const route of settings.routes) {
    for (const [name, template] of Object.entries(route.env)) {
      variables[name] = template
        .replaceAll("{url}", `${base}/${route.name}`)
        .replaceAll("{phantom}", settings.phantom)
    }
  }
  return variables
}
