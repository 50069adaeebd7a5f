import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

/**
 * A real Secret Service for the keyring tests: `gnome-keyring-daemon`
 * (secrets component, its login collection created and unlocked with a
 * random password fed on stdin) inside a private `dbus-run-session`, with its
 * own HOME, so no test ever touches a user's keyring. `.ci/run` installs
 * `dbus` and `gnome-keyring`; where they are missing, `SECRET_SERVICE_MISSING`
 * says so and the keyring tests are skipped with that reason in their names,
 * and a warning is printed.
 */

const TOOLS = ["dbus-run-session", "gnome-keyring-daemon", "dbus-send"] as const

const missingTools = (): string | undefined => {
  const missing = TOOLS.filter((tool) => {
    try {
      execFileSync("sh", ["-c", `command -v ${tool}`], { stdio: "ignore" })
      return false
    } catch {
      return true
    }
  })
  return missing.length === 0 ? undefined : `needs ${missing.join(", ")} (apt-get install dbus gnome-keyring)`
}

/** Why the keyring tests cannot run here, or `undefined` when they can. */
export const SECRET_SERVICE_MISSING = missingTools()

if (SECRET_SERVICE_MISSING !== undefined) {
  process.stderr.write(
    `\n!!! keyring tests SKIPPED: no Secret Service can be started here: ${SECRET_SERVICE_MISSING}\n\n`
  )
}

/** The skip label of a keyring test group: its name, and why it is skipped when it is. */
export const keyringSuite = (name: string): string =>
  SECRET_SERVICE_MISSING === undefined ? name : `${name} [SKIPPED: ${SECRET_SERVICE_MISSING}]`

export interface SecretService {
  /** The private bus's address. */
  readonly address: string
  /** The environment that points a child (or this process) at it. */
  readonly env: Readonly<Record<string, string>>
  /** Locks the collections (as a screen lock would); reads and writes then need a prompt, which fails without a display. */
  readonly lock: () => void
  /** Freezes the keyring daemon (SIGSTOP): it stops answering, as a hung one would. */
  readonly freeze: () => void
  readonly thaw: () => void
  /** Ends the session: the daemon and the bus go. */
  readonly stop: () => Promise<void>
}

// The daemon runs in the foreground in the session's process group, so stopping the group stops it too.
const SESSION_SCRIPT = `
printf %s "$KEYRING_PASSWORD" | gnome-keyring-daemon --foreground --unlock --components=secrets >/dev/null 2>&1 &
daemon=$!
i=0
until dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus.NameHasOwner string:org.freedesktop.secrets 2>/dev/null | grep -q true; do
  i=$((i+1)); [ $i -gt 200 ] && exit 3; sleep 0.05
done
echo "$daemon $DBUS_SESSION_BUS_ADDRESS"
exec cat >/dev/null
`

const running = new Set<ChildProcess>()

export interface SecretServiceOptions {
  /**
   * Keep entries in the daemon's in-memory `session` collection (the default
   * alias pointed at it) instead of the `login` collection on disk, which
   * gnome-keyring rewrites whole on every change: thousands of entries then
   * take seconds instead of minutes. The calls are the same D-Bus calls.
   */
  readonly inMemory?: boolean
}

const SET_SESSION_DEFAULT = `dbus-send --session --print-reply --dest=org.freedesktop.secrets /org/freedesktop/secrets org.freedesktop.Secret.Service.SetAlias string:default objpath:/org/freedesktop/secrets/collection/session >/dev/null || exit 4`

/** Starts a private session bus with an unlocked gnome-keyring on it (about 0.1 s). */
export const startSecretService = (options: SecretServiceOptions = {}): Promise<SecretService> => {
  const home = fs.mkdtempSync(path.join(fs.realpathSync(os.tmpdir()), "cp-keyring-"))
  const runtime = path.join(home, "run")
  fs.mkdirSync(runtime, { mode: 0o700 })
  const script =
    options.inMemory === true
      ? SESSION_SCRIPT.replace("echo ", `${SET_SESSION_DEFAULT}\necho `)
      : SESSION_SCRIPT
  const child = spawn("dbus-run-session", ["--", "sh", "-c", script], {
    detached: true,
    stdio: ["pipe", "pipe", "ignore"],
    env: {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      HOME: home,
      XDG_DATA_HOME: path.join(home, "data"),
      XDG_CONFIG_HOME: path.join(home, "config"),
      XDG_RUNTIME_DIR: runtime,
      KEYRING_PASSWORD: crypto.randomBytes(16).toString("hex")
    }
  })
  running.add(child)
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()))
  const stop = async () => {
    running.delete(child)
    try {
      process.kill(-child.pid!, "SIGKILL")
    } catch {
      // Already gone.
    }
    await exited
    fs.rmSync(home, { recursive: true, force: true })
  }
  return new Promise((resolve, reject) => {
    let out = ""
    child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
      out += chunk
      const newline = out.indexOf("\n")
      if (newline < 0) return
      const [pid, address] = out.slice(0, newline).split(" ") as [string, string]
      const env = { DBUS_SESSION_BUS_ADDRESS: address }
      const signal = (name: NodeJS.Signals) => process.kill(Number(pid), name)
      resolve({
        address,
        env,
        lock: () => {
          execFileSync(
            "dbus-send",
            [
              "--session",
              "--print-reply",
              "--dest=org.freedesktop.secrets",
              "/org/freedesktop/secrets",
              "org.freedesktop.Secret.Service.Lock",
              "array:objpath:/org/freedesktop/secrets/collection/login,/org/freedesktop/secrets/collection/session"
            ],
            { env: { ...process.env, ...env }, stdio: "ignore" }
          )
        },
        freeze: () => signal("SIGSTOP"),
        thaw: () => signal("SIGCONT"),
        stop
      })
    })
    void exited.then(() => reject(new Error("the private Secret Service did not start")))
  })
}

/** Stops every Secret Service still running (for `afterEach` / `afterAll`). */
export const stopAllSecretServices = async (): Promise<void> => {
  await Promise.all(
    [...running].map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve()
          child.once("exit", () => resolve())
          try {
            process.kill(-child.pid!, "SIGKILL")
          } catch {
            resolve()
          }
        })
    )
  )
  running.clear()
}
