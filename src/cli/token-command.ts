import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import type { StoreKind } from "../config/store-kind.js"
import { NotFound } from "../errors/errors.js"
import { STANDARD_INPUT, UsageError } from "../errors/usage.js"
import { storeLayers } from "../layers/StoreLayers.js"
import { MAX_STORED_TOKEN_BYTES } from "../protocol/limits.js"
import { fieldIssueOf, formatFieldIssue } from "../protocol/parse-issue.js"
import { OAuthToken, sanitizeToken, storedTokenBytes } from "../protocol/token.js"
import { type TokenKey, TokenStore } from "../services/TokenStore.js"
import { requireName } from "./names.js"
import * as shared from "./options.js"
import { refreshCommand } from "./refresh-command.js"
import { readStdin } from "./stdin.js"

const provider = Args.text({ name: "PROVIDER" }).pipe(Args.withDescription("provider name"))
/** What every command on one stored token takes. */
const oneToken = { dataDir: shared.dataDir, store: shared.store, bucket: shared.bucket, provider }
const decodeToken = Schema.decodeUnknownEither(OAuthToken)

const tokenKey = (flags: { readonly provider: string; readonly bucket: string }) =>
  Effect.all({
    provider: requireName(flags.provider, "PROVIDER"),
    bucket: requireName(flags.bucket, "--bucket")
  })

type Store = typeof TokenStore.Service

/** Runs a token command against the chosen store (for the resolved data directory). */
const withStore = <A, E>(
  flags: { readonly dataDir: string; readonly store: StoreKind },
  use: (store: Store) => Effect.Effect<A, E>
) => Effect.flatMap(TokenStore, use).pipe(Effect.provide(storeLayers(flags.store, flags.dataDir).tokens))

/** Runs `change` holding the key's lock (the one a running server takes too). */
const underLock = <A, E>(store: Store, key: TokenKey, change: Effect.Effect<A, E>) =>
  Effect.scoped(Effect.zipRight(store.lock(key), change))

const parseToken = (text: string): Effect.Effect<OAuthToken, UsageError> => {
  // The parser's own message quotes the input, which may be a secret: say only what is wrong.
  const json = Either.try(() => JSON.parse(text) as unknown)
  if (Either.isLeft(json)) {
    return Effect.fail(new UsageError({ reason: "NotJson", subject: STANDARD_INPUT }))
  }
  return Either.match(decodeToken(json.right), {
    onLeft: (error) =>
      Effect.fail(
        new UsageError({
          reason: "InvalidToken",
          subject: STANDARD_INPUT,
          detail: formatFieldIssue(fieldIssueOf(error), "it")
        })
      ),
    onRight: (token) =>
      storedTokenBytes(token) > MAX_STORED_TOKEN_BYTES
        ? Effect.fail(
            new UsageError({
              reason: "TokenTooLarge",
              subject: STANDARD_INPUT,
              detail: `${MAX_STORED_TOKEN_BYTES}`
            })
          )
        : Effect.succeed(token)
  })
}

const mustExist = (store: Store, key: TokenKey) =>
  Effect.flatMap(store.getLatest(key), (token) =>
    token === undefined
      ? Effect.fail(new NotFound({ what: "token", name: `${key.provider}:${key.bucket}` }))
      : Effect.succeed(token)
  )

export const importCommand = Command.make("import", oneToken, (flags) =>
  Effect.gen(function* () {
    const key = yield* tokenKey(flags)
    const token = yield* Effect.flatMap(readStdin, parseToken)
    yield* withStore(flags, (store) => underLock(store, key, store.save(key, token)))
    yield* Console.error(`stored token for ${key.provider}:${key.bucket}`)
  })
).pipe(Command.withDescription("read one JSON token from stdin and store it in full"))

export const showCommand = Command.make(
  "show",
  {
    ...oneToken,
    reveal: Options.boolean("reveal").pipe(Options.withDescription("include the refresh token"))
  },
  (flags) =>
    Effect.gen(function* () {
      const key = yield* tokenKey(flags)
      const token = yield* withStore(flags, (store) => mustExist(store, key))
      yield* Console.log(JSON.stringify(flags.reveal ? token : sanitizeToken(token), null, 2))
    })
).pipe(Command.withDescription("print the stored token as JSON (without its refresh token unless --reveal)"))

export const listCommand = Command.make("list", { dataDir: shared.dataDir, store: shared.store }, (flags) =>
  withStore(flags, (store) =>
    Effect.gen(function* () {
      for (const name of yield* store.listProviders()) {
        for (const bucket of yield* store.listBuckets(name)) yield* Console.log(`${name}:${bucket}`)
      }
    })
  )
).pipe(Command.withDescription("list stored tokens, one provider:bucket a line"))

export const removeCommand = Command.make("remove", oneToken, (flags) =>
  Effect.gen(function* () {
    const key = yield* tokenKey(flags)
    yield* withStore(flags, (store) =>
      underLock(store, key, Effect.zipRight(mustExist(store, key), store.remove(key)))
    )
    yield* Console.error(`removed token ${key.provider}:${key.bucket}`)
  })
).pipe(Command.withDescription("delete a stored token"))

export const tokenCommand = Command.make("token").pipe(
  Command.withDescription("manage stored OAuth tokens on the host"),
  Command.withSubcommands([importCommand, showCommand, listCommand, removeCommand, refreshCommand])
)
