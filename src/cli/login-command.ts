import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import { UsageError } from "../errors/usage.js"
import { toWireError } from "../errors/wire-error.js"
import { LOGIN_FLOWS } from "../protocol/login.js"
import { loginLayer } from "../server/server-layer.js"
import { makeLoginPrompt } from "./login-prompt.js"
import { requireTokenKey } from "./names.js"
import { openInBrowser } from "./open-browser.js"
import * as shared from "./options.js"
import { checkedDataDir, providersFile } from "./options.js"
import { runLogin } from "./run-login.js"
import { stopSignalsCancel } from "./signals.js"
import { readLine } from "./stdin.js"

/**
 * `credproxy login PROVIDER [--bucket B] [--flow F]` (PROTOCOL.md §17): logs
 * in on the host through the same sessions as the `oauth_*` operations, no
 * socket. Instructions go to stderr, one JSON line to stdout at the end;
 * Ctrl-C cancels (exit 130). A provider that cannot log in, or a bad
 * argument, exits 2; a login the provider refuses, or that expires, exits 1.
 */
export const loginCommand = Command.make(
  "login",
  {
    dataDir: shared.dataDir,
    store: shared.store,
    bucket: shared.bucket,
    providers: providersFile,
    flow: Options.choice("flow", LOGIN_FLOWS).pipe(
      Options.withDescription(
        "how to log in (default: the provider's login.flow, else device_code when it can)"
      ),
      Options.optional
    ),
    noBrowser: Options.boolean("no-browser").pipe(
      Options.withDescription("browser_redirect: do not try to open the browser; only print the URL")
    ),
    provider: Args.text({ name: "PROVIDER" }).pipe(
      Args.withDescription("provider name in the providers file")
    )
  },
  (flags) =>
    Effect.gen(function* () {
      const key = yield* requireTokenKey(flags.provider, flags.bucket)
      yield* checkedDataDir(flags.dataDir)
      const layer = yield* loginLayer(flags.dataDir, flags.providers, flags.store)
      yield* stopSignalsCancel
      const token = yield* runLogin(key, Option.getOrUndefined(flags.flow), {
        prompt: makeLoginPrompt(process.stderr),
        open: flags.noBrowser ? () => Effect.void : openInBrowser,
        readCode: readLine
      }).pipe(
        Effect.provide(layer),
        // The sessions' own log lines are for a server's log; here stderr carries the instructions.
        Logger.withMinimumLogLevel(LogLevel.Warning),
        Effect.catchTags({
          // The provider entry cannot be used for a login: fix the providers file (exit 2).
          ProviderNotFound: (error) =>
            Effect.fail(
              new UsageError({ reason: "LoginProvider", subject: error.provider, detail: error.message })
            ),
          InvalidRequest: (error) =>
            Effect.fail(
              new UsageError({
                reason: "NotACode",
                subject: "the pasted text",
                detail: toWireError(error).message
              })
            )
        })
      )
      yield* Console.log(
        JSON.stringify({
          event: "logged_in",
          provider: key.provider,
          bucket: key.bucket,
          expiresAt: Number.isFinite(token.expiry) ? token.expiry * 1000 : null
        })
      )
    })
).pipe(
  Command.withDescription(
    "log in to a provider on the host (device code, pasted code or browser) and store its token"
  )
)
