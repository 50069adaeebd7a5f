import * as HelpDoc from "@effect/cli/HelpDoc"
import * as Options from "@effect/cli/Options"
import * as ValidationError from "@effect/cli/ValidationError"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { resolveDataDir } from "../config/data-dir.js"
import { resolveStoreKind, STORE_KINDS } from "../config/store-kind.js"
import { checkDataDir } from "../layers/file-store/data-dir-check.js"
import { LOG_LEVELS, type LogFormat } from "../layers/StderrLogger.js"

/**
 * @effect/cli has a built-in `--log-level` (with other level names) that it
 * strips from the arguments before our commands see them; `main` hands ours
 * over under this alias instead (see `routeLogLevel`).
 */
export const LOG_LEVEL_ALIAS = "-L"

export const DATA_DIR_DESCRIPTION =
  "data directory (default: $CREDPROXY_HOME, else $XDG_DATA_HOME/credproxy, else ~/.local/share/credproxy)"

/** `--data-dir DIR`, shared by every command; resolved with the environment fallbacks. */
export const dataDir = Options.text("data-dir").pipe(
  Options.withPseudoName("DIR"),
  Options.withDescription(DATA_DIR_DESCRIPTION),
  Options.optional,
  Options.map((flag) => resolveDataDir(Option.getOrUndefined(flag)))
)

/** `--store file|keyring`, shared by every command that touches the store; else `$CREDPROXY_STORE`, else `file`. */
export const store = Options.choice("store", STORE_KINDS).pipe(
  Options.withDescription(
    "where credentials are kept: file (the data directory) or keyring (the OS keyring); default: $CREDPROXY_STORE, else file"
  ),
  Options.optional,
  Options.mapEffect((flag) =>
    Effect.mapError(resolveStoreKind(Option.getOrUndefined(flag)), (error) =>
      ValidationError.invalidValue(HelpDoc.p(error.message))
    )
  )
)

/** `--bucket BUCKET`, absent means "default". */
export const bucket = Options.text("bucket").pipe(
  Options.withPseudoName("BUCKET"),
  Options.withDescription("bucket of the provider (default: default)"),
  Options.withDefault("default")
)

export const logLevel = Options.choice("log-level", LOG_LEVELS).pipe(
  Options.withAlias(LOG_LEVEL_ALIAS.slice(1)),
  Options.withDescription("how much to log on stderr (default: info)"),
  Options.withDefault("info" as const)
)

export const logFormat = Options.choice("log-format", ["pretty", "json"] as ReadonlyArray<LogFormat>).pipe(
  Options.withDescription("pretty for people (default), json for one JSON object per stderr line"),
  Options.withDefault("pretty" as const)
)

/**
 * `--NAME N`: a whole number of 0 or more. Parsed here rather than with
 * `Options.integer`, whose message does not name the option.
 */
export const wholeNumber = (name: string, pseudoName: string) =>
  Options.text(name).pipe(Options.withPseudoName(pseudoName), Options.mapEffect(parseWholeNumber(name)))

/** The value of `--NAME` as a whole number of 0 or more; anything else is a message naming the option. */
export const parseWholeNumber =
  (name: string) =>
  (text: string): Effect.Effect<number, ValidationError.ValidationError> =>
    /^\d{1,15}$/.test(text)
      ? Effect.succeed(Number(text))
      : Effect.fail(
          ValidationError.invalidValue(
            HelpDoc.p(`--${name} takes a whole number of 0 or more, not "${text}"`)
          )
        )

/** An option that may be given any number of times; the help marks it with `...`. */
export const repeated = <A>(option: Options.Options<A>, description: string): Options.Options<Array<A>> =>
  option.pipe(Options.withDescription(description), Options.repeated)

/** `--providers FILE` (PROTOCOL.md §16), for `serve`, `login`, `token refresh`, `providers list|add` and `doctor`. */
export const providersFile = Options.file("providers").pipe(
  Options.withPseudoName("FILE"),
  Options.withDescription("OAuth providers file (default: {data dir}/providers.json, which may be missing)"),
  Options.optional,
  Options.map(Option.getOrUndefined)
)

/**
 * The data directory's checks (PROTOCOL.md §22) for a command that reads it
 * without opening a store, made before anything in it is read: a refused one
 * is `DataDirRefused` (exit 2) as for every other command. A missing one is
 * left missing.
 */
export const checkedDataDir = (dataDir: string) => checkDataDir(dataDir, { create: false })
