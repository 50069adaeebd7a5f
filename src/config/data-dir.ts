import * as os from "node:os"
import * as path from "node:path"

/** The data directory (PROTOCOL.md §13): `--data-dir`, else `$CREDPROXY_HOME`, else `${XDG_DATA_HOME:-~/.local/share}/credproxy`. */
export const resolveDataDir = (flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string => {
  if (flag !== undefined && flag !== "") return path.resolve(flag)
  if (env.CREDPROXY_HOME !== undefined && env.CREDPROXY_HOME !== "") return path.resolve(env.CREDPROXY_HOME)
  const xdg =
    env.XDG_DATA_HOME !== undefined && env.XDG_DATA_HOME !== ""
      ? env.XDG_DATA_HOME
      : path.join(os.homedir(), ".local", "share")
  return path.resolve(xdg, "credproxy")
}
