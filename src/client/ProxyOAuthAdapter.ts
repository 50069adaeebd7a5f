import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type { InitiateData } from "../protocol/login.js"
import type { DataOf } from "../protocol/operations.js"
import { LoginFailed, type ProxyClientError } from "./errors.js"
import { ProxyClient, type ProxyClientOptions } from "./ProxyClient.js"
import { PromiseRunner } from "./promise-runner.js"
import { DEFAULT_BUCKET } from "./store-types.js"

/**
 * Logging in from inside the sandbox (PROTOCOL.md §17): the host runs the
 * login and keeps every secret of it; this side shows the user what to do,
 * reads a pasted code, and asks how it is going. `login` and `refresh` are
 * the Effect face (needing `ProxyClient`); `ProxyOAuthAdapter` is the
 * Promise face, with an `AbortSignal` that cancels the login on the host.
 */

/** A token as the proxy serves it: every field but the refresh token. */
export type ServedToken = DataOf<"get_token">

/**
 * What the user must do, as the caller's `onPrompt` receives it: the
 * `oauth_initiate` answer. `device_code`: open `verification_uri` and enter
 * `user_code` (or open `verification_uri_complete`, which carries it);
 * `pkce_redirect`: open `auth_url`, whose last page shows the code to paste
 * (`readCode`); `browser_redirect`: open `auth_url` on the host's machine,
 * whose browser comes back to the host's listener.
 */
export type LoginPrompt = InitiateData

export interface LoginOptions<E> {
  readonly bucket?: string | undefined
  /** Shows the user what to do (once, after the host started the login). */
  readonly onPrompt: (prompt: LoginPrompt) => Effect.Effect<void, E>
  /** Reads the code the user pastes (`CODE` or `CODE#STATE`); needed for `pkce_redirect`. */
  readonly readCode?: Effect.Effect<string, E> | undefined
}

/** How long a cancel of an abandoned login may take before it is left to the session's expiry. */
const CANCEL_TIMEOUT = Duration.seconds(5)
/** Polling interval when the host names none. */
const DEFAULT_POLL_MS = 1_000

/**
 * Logs in to `provider` (bucket `default` unless given) through the proxy:
 * `oauth_initiate`, `onPrompt`, then `oauth_exchange` with the pasted code
 * or `oauth_poll` every `pollIntervalMs` until the host has the token. The
 * answer is the token without its refresh token (the host keeps that). If
 * it is interrupted or fails on this side, the session is cancelled on the
 * host (`oauth_cancel`), which stops its polling or listener at once.
 */
export const login = <E = never>(
  provider: string,
  options: LoginOptions<E>
): Effect.Effect<ServedToken, ProxyClientError | LoginFailed | E, ProxyClient> =>
  Effect.gen(function* () {
    const client = yield* ProxyClient
    const started = yield* client.call("oauth_initiate", {
      provider,
      bucket: options.bucket ?? DEFAULT_BUCKET
    })
    const session_id = started.session_id
    const cancel = client
      .call("oauth_cancel", { session_id })
      .pipe(Effect.timeout(CANCEL_TIMEOUT), Effect.ignore)

    const finish: Effect.Effect<ServedToken, ProxyClientError | LoginFailed | E> = Effect.gen(function* () {
      yield* options.onPrompt(started)
      if (started.flow_type === "pkce_redirect") {
        if (options.readCode === undefined) {
          return yield* new LoginFailed({
            code: "EXCHANGE_FAILED",
            reason: "this login needs the code the provider shows (pkce_redirect), and no readCode was given"
          })
        }
        const code = yield* options.readCode
        return (yield* client.call("oauth_exchange", { session_id, code })).token
      }
      let intervalMs = "pollIntervalMs" in started ? started.pollIntervalMs : DEFAULT_POLL_MS
      for (;;) {
        yield* Effect.sleep(Duration.millis(intervalMs))
        const status = yield* client.call("oauth_poll", { session_id })
        switch (status.status) {
          case "pending":
            intervalMs = status.pollIntervalMs
            continue
          case "complete":
            return status.token
          case "error":
            return yield* new LoginFailed({ code: status.code, reason: status.error })
        }
      }
    })
    return yield* finish.pipe(Effect.onExit((exit) => (Exit.isSuccess(exit) ? Effect.void : cancel)))
  })

/** `refresh_token` for `provider:bucket`: the host refreshes (unless the token is still valid) and answers it sanitized. */
export const refresh = (
  provider: string,
  bucket?: string
): Effect.Effect<ServedToken, ProxyClientError, ProxyClient> =>
  Effect.flatMap(ProxyClient, (client) =>
    client.call("refresh_token", { provider, bucket: bucket ?? DEFAULT_BUCKET })
  )

/** `login`'s options for a Promise-based caller. */
export interface PromiseLoginOptions {
  readonly bucket?: string
  readonly onPrompt: (prompt: LoginPrompt) => void | Promise<void>
  readonly readCode?: () => Promise<string>
  /** Aborting cancels the login on the host; the promise rejects with the signal's reason. */
  readonly signal?: AbortSignal
}

/** Runs a caller's callback; what it throws or rejects with is the login's failure, as it is. */
const fromCallback = <A>(callback: () => A | Promise<A>): Effect.Effect<A, unknown> =>
  Effect.tryPromise({ try: async () => callback(), catch: (error) => error })

/**
 * The Promise face: `new ProxyOAuthAdapter()` talks to the proxy at
 * `LLXPRT_CREDENTIAL_SOCKET` (or `socketPath`), with its own connection.
 */
export class ProxyOAuthAdapter {
  private readonly runner: PromiseRunner

  constructor(options: ProxyClientOptions | { readonly runner: PromiseRunner } = {}) {
    this.runner = "runner" in options ? options.runner : new PromiseRunner(options)
  }

  login(provider: string, options: PromiseLoginOptions): Promise<ServedToken> {
    const { readCode } = options
    return this.runner.run(
      login(provider, {
        bucket: options.bucket,
        onPrompt: (prompt) => fromCallback(() => options.onPrompt(prompt)),
        readCode: readCode === undefined ? undefined : fromCallback(readCode)
      }),
      { signal: options.signal, keepAlive: true }
    )
  }

  refresh(provider: string, bucket?: string): Promise<ServedToken> {
    return this.runner.run(refresh(provider, bucket))
  }

  /** Closes the connection to the proxy. */
  dispose(): Promise<void> {
    return this.runner.dispose()
  }
}
