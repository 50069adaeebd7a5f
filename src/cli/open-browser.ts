import { spawn } from "node:child_process"
import * as Effect from "effect/Effect"

/**
 * Tries to open `url` in the user's browser for `credproxy login`: the
 * command in `$BROWSER` when it is set (a common convention), else the
 * platform's opener (`open`, `xdg-open`, `start`). Whether it worked is not
 * known, so the caller prints the URL regardless; a missing opener is
 * ignored. The opener gets the URL as an argument, like every browser
 * launcher: it holds the state and the PKCE challenge, never the verifier.
 */
export const openInBrowser = (url: string): Effect.Effect<void> =>
  Effect.sync(() => {
    const browser = process.env.BROWSER
    const [command, args]: [string, Array<string>] =
      browser !== undefined && browser !== ""
        ? [browser, [url]]
        : process.platform === "darwin"
          ? ["open", [url]]
          : process.platform === "win32"
            ? ["cmd", ["/c", "start", "", url]]
            : ["xdg-open", [url]]
    try {
      const child = spawn(command, args, { detached: true, stdio: "ignore" })
      child.on("error", () => {})
      child.unref()
    } catch {
      // No opener: the URL is printed anyway.
    }
  })
