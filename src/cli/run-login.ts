import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import { LoginFailed } from "../errors/login-errors.js"
import type { UsageError } from "../errors/usage.js"
import type { InitiateData, LoginFlow } from "../protocol/login.js"
import type { OAuthToken } from "../protocol/token.js"
import { type LoginError, LoginSessions, type LoginSessionsShape } from "../services/LoginSessions.js"
import type { TokenKey } from "../services/TokenStore.js"
import type { LoginPrompt } from "./login-prompt.js"

/** The identity of the host's own logins: the sessions are not shared with any connection. */
const HOST = "host"
/** How often the command looks at its session (and turns the spinner). */
const TICK = Duration.millis(200)

export interface LoginSteps {
  readonly prompt: LoginPrompt
  /** Tries to open a URL in the user's browser (`browser_redirect`). */
  readonly open: (url: string) => Effect.Effect<void>
  /** Reads the pasted code (`pkce_redirect`). */
  readonly readCode: Effect.Effect<string, UsageError>
}

/** Waits (on the Clock) for a device or browser session to finish; its token, or why not. */
const awaitSession = (
  sessions: LoginSessionsShape,
  id: string,
  endsAt: number,
  prompt: LoginPrompt
): Effect.Effect<OAuthToken, LoginError | LoginFailed> =>
  Effect.gen(function* () {
    for (;;) {
      const status = sessions.poll(HOST, id)
      if (Either.isLeft(status)) return yield* status.left
      const current = status.right
      if (current._tag === "Complete") return current.token
      if (current._tag === "Failed")
        return yield* new LoginFailed({ code: current.code, text: current.message })
      yield* prompt.waiting((endsAt - (yield* Effect.clockWith((clock) => clock.currentTimeMillis))) / 1000)
      yield* Effect.sleep(TICK)
    }
  }).pipe(Effect.ensuring(prompt.doneWaiting))

/** The sentences of each flow: what the user must do, in plain words. */
const instructions = (provider: string, started: InitiateData): string => {
  const minutes = Math.round(started.expiresInSeconds / 60)
  switch (started.flow_type) {
    case "device_code":
      return [
        `To log in to ${provider}, open ${started.verification_uri} and enter the code ${started.user_code}`,
        ...(started.verification_uri_complete === undefined
          ? []
          : [`(or open ${started.verification_uri_complete}, which has the code in it).`]),
        `Waiting for you to finish (up to ${minutes} minutes; Ctrl-C cancels).`
      ].join("\n")
    case "browser_redirect":
      return [
        `To log in to ${provider}, log in in your browser. If it did not open, open this URL:`,
        `  ${started.auth_url}`,
        `Waiting for you to finish (up to ${minutes} minutes; Ctrl-C cancels).`
      ].join("\n")
    case "pkce_redirect":
      return [
        `To log in to ${provider}, open this URL in a browser and log in:`,
        `  ${started.auth_url}`,
        "The last page shows a code. Paste it here and press Enter:"
      ].join("\n")
  }
}

/**
 * `credproxy login` on the host (PROTOCOL.md §17): the same sessions and
 * flows as the `oauth_*` operations, driven in this process. A stop (Ctrl-C)
 * interrupts it, and the sessions' scope then ends the polling or the
 * listener.
 */
export const runLogin = (
  key: TokenKey,
  flow: LoginFlow | undefined,
  steps: LoginSteps
): Effect.Effect<OAuthToken, LoginError | LoginFailed | UsageError, LoginSessions> =>
  Effect.gen(function* () {
    const sessions = yield* LoginSessions
    const started = yield* sessions.initiate(HOST, key, { flow })
    const endsAt =
      (yield* Effect.clockWith((clock) => clock.currentTimeMillis)) + started.expiresInSeconds * 1000
    if (started.flow_type === "browser_redirect") yield* steps.open(started.auth_url)
    yield* steps.prompt.say(instructions(key.provider, started))
    if (started.flow_type !== "pkce_redirect") {
      return yield* awaitSession(sessions, started.session_id, endsAt, steps.prompt)
    }
    const code = yield* steps.readCode
    return yield* sessions.exchange(HOST, started.session_id, code)
  })
