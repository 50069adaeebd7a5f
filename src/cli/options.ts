import * as Options from "@effect/cli/Options"
import * as Option from "effect/Option"
import { resolveDataDir } from "../config/data-dir.js"
import { checkDataDir } from "../layers/file-store/data-dir-check.js"
import { LOG_LEVELS, type LogFormat } from "../layers/StderrLogger.js"

/**
 * @effect/cli has a built-in `--log-level` (with other level names) that it
 * strips from the arguments before our commands see them; `main` hands ours
 * over under this alias instead (see `routeLogLevel`).
 */
export const LOG_LEVEL_ALIAS = "-L"

/** `--data-dir DIR`, shared by every command; resolved with the environment fallbacks. */
export const dataDir = Options.text("data-dir").pipe(
  Options.withDescription(
    "data directory (default: $CREDPROXY_HOME, else $XDG_DATA_HOME/credproxy, else ~/.local/share/credproxy)"
  ),
  Options.optional,
  Options.map((flag) => resolveDataDir(Option.getOrUndefined(flag)))
)

/** `--bucket B`, absent means "default". */
export const bucket = Options.text("bucket").pipe(
  Options.withDescription("bucket of the provider (default: default)"),
  Options.withDefault("default")
)

export const logLevel = Options.choice("log-level", LOG_LEVELS).pipe(
  Options.withAlias(LOG_LEVEL_ALIAS.slice(1)),
  Options.withDescription("how much to log on stderr"),
  Options.withDefault("info" as const)
)

export const logFormat = Options.choice("log-format", ["pretty", "json"] as ReadonlyArray<LogFormat>).pipe(
  Options.withDescription("pretty for people, json for one JSON object per stderr line"),
  Options.withDefault("pretty" as const)
)

/** An option that may be given any number of times. */
export const repeated = <A>(option: Options.Options<A>, description: string): Options.Options<Array<A>> =>
  option.pipe(Options.withDescription(description), Options.repeated)

/** `--providers FILE` (PROTOCOL.md §16), for `serve`, `token refresh` and `providers list`. */
export const providersFile = Options.file("providers").pipe(
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
