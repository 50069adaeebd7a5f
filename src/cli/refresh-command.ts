import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import { NotFound } from "../errors/errors.js"
import { sanitizeToken } from "../protocol/token.js"
import { refreshLayer } from "../server/server-layer.js"
import { RefreshCoordinator } from "../services/RefreshCoordinator.js"
import { requireTokenKey } from "./names.js"
import * as shared from "./options.js"
import { checkedDataDir, providersFile } from "./options.js"

/**
 * `credproxy token refresh PROVIDER [--bucket B]`: the same coordinator as the
 * `refresh_token` operation (same checks, same lock across processes, so it
 * is safe next to a running server), on the host's store. Prints the
 * sanitized token; a token that is still valid is printed as it is.
 */
export const refreshCommand = Command.make(
  "refresh",
  {
    dataDir: shared.dataDir,
    store: shared.store,
    bucket: shared.bucket,
    providers: providersFile,
    provider: Args.text({ name: "PROVIDER" }).pipe(Args.withDescription("provider name"))
  },
  (flags) =>
    Effect.gen(function* () {
      const key = yield* requireTokenKey(flags.provider, flags.bucket)
      // Checked before the providers file in it is read (the store checks it again when it opens).
      yield* checkedDataDir(flags.dataDir)
      const token = yield* Effect.flatMap(RefreshCoordinator, (coordinator) => coordinator.refresh(key)).pipe(
        Effect.provide(refreshLayer(flags.dataDir, flags.providers, flags.store)),
        // Named here, where a person reads it (the coordinator's own is the socket's).
        Effect.catchTag("NotFound", () =>
          Effect.fail(new NotFound({ what: "token", name: `${key.provider}:${key.bucket}` }))
        )
      )
      yield* Console.log(JSON.stringify(sanitizeToken(token), null, 2))
    })
).pipe(
  Command.withDescription(
    "refresh a stored token at its provider (unless it is still valid) and print it without its refresh token"
  )
)
