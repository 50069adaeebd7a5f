import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { Notifier, type NotifierShape } from "../services/Notifier.js"

/** At most one notification in this long: a burst of waiting uses is one reminder, not a storm. */
const MIN_INTERVAL_MS = 1_000

const onPath = (command: string): string | undefined => {
  for (const dir of (process.env.PATH ?? "").split(path.delimiter)) {
    if (dir === "") continue
    const file = path.join(dir, command)
    try {
      fs.accessSync(file, fs.constants.X_OK)
      return file
    } catch {
      // Not here.
    }
  }
  return undefined
}

/** The platform's notification command for `title` and `body`, if it has one. */
const commandFor = (title: string, body: string): [string, Array<string>] | undefined => {
  if (process.platform === "darwin") {
    const osascript = onPath("osascript")
    const quoted = (text: string) => JSON.stringify(text)
    return osascript === undefined
      ? undefined
      : [osascript, ["-e", `display notification ${quoted(body)} with title ${quoted(title)}`]]
  }
  const notifySend = onPath("notify-send")
  return notifySend === undefined ? undefined : [notifySend, ["--app-name=credproxy", title, body]]
}

/**
 * Desktop notifications through `notify-send` (Linux) or `osascript`
 * (macOS), started detached with no input or output and not waited for; a
 * platform without either, or a failure to start, is silently nothing.
 */
export const layer: Layer.Layer<Notifier> = Layer.effect(
  Notifier,
  Effect.map(Effect.clock, (clock): NotifierShape => {
    let last = Number.NEGATIVE_INFINITY
    return {
      notify: (title, body) => {
        const now = clock.unsafeCurrentTimeMillis()
        if (now - last < MIN_INTERVAL_MS) return
        last = now
        const command = commandFor(title, body)
        if (command === undefined) return
        try {
          const child = spawn(command[0], command[1], { stdio: "ignore", detached: true })
          child.on("error", () => {})
          child.unref()
        } catch {
          // Best effort.
        }
      }
    }
  })
)

/** No notifications (tests, and hosts that do not want them). */
export const none: Layer.Layer<Notifier> = Layer.succeed(Notifier, { notify: () => {} })
