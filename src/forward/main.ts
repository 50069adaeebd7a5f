import { parseArgs } from "node:util"
import { forwardReadyLine, startBytePipe } from "./byte-pipe.js"
import { DEFAULT_FORWARD_PORT, FORWARD_FIX, parseForwardTargets } from "./targets.js"

/**
 * `credproxy forward` on its own (bin/credproxy.mjs loads this file, not the
 * CLI, for `forward` without --help): parsed with Node's own `parseArgs`,
 * node built-ins only, so it starts fast in a container and carries no server
 * code. `credproxy forward --help` goes through the full CLI instead.
 */
const fail = (what: string) => {
  process.stderr.write(`credproxy: ${what}; ${FORWARD_FIX}\n`)
  process.exit(2)
}

const run = async () => {
  let values: { listen?: string | undefined; to?: string | undefined }
  try {
    values = parseArgs({
      args: process.argv.slice(3),
      options: { listen: { type: "string" }, to: { type: "string" } },
      strict: true,
      allowPositionals: false
    }).values
  } catch {
    return fail("forward takes --listen ADDR and --to unix:PATH only")
  }
  if (values.to === undefined) return fail("--to is missing")
  const parsed = parseForwardTargets(values.listen ?? `127.0.0.1:${DEFAULT_FORWARD_PORT}`, values.to)
  if ("option" in parsed) return fail(`${parsed.option} ${JSON.stringify(parsed.value)} is not usable`)
  const { host, socketPath } = parsed.targets
  try {
    const { server, port } = await startBytePipe(parsed.targets)
    process.stdout.write(forwardReadyLine(host, port, socketPath))
    const stop = () => {
      server.close()
      process.exit(0)
    }
    process.on("SIGINT", stop)
    process.on("SIGTERM", stop)
    process.on("SIGHUP", stop)
  } catch (error) {
    process.stderr.write(
      `credproxy: cannot listen on ${host} (${(error as NodeJS.ErrnoException).code ?? "error"}); choose another --listen port\n`
    )
    process.exit(2)
  }
}

void run()
