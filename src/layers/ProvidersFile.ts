import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { load } from "../config/providers-file.js"
import type { UsageError } from "../errors/usage.js"
import { make, type OAuthProvider, OAuthProviders } from "../services/OAuthProviders.js"

/** The providers of the providers file (PROTOCOL.md §16) as a service; fails with a `UsageError` for a bad file. */
export const layer = (options: {
  readonly dataDir: string
  readonly file?: string | undefined
}): Layer.Layer<OAuthProviders, UsageError> => Layer.effect(OAuthProviders, Effect.map(load(options), make))

/** A fixed list of providers (an embedding host, tests). */
export const fromList = (providers: ReadonlyArray<OAuthProvider>): Layer.Layer<OAuthProviders> =>
  Layer.succeed(OAuthProviders, make(providers))
