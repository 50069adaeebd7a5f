import type { AnyCommand } from "./command-doc.js"
import { EXAMPLES } from "./examples.js"

/** A real command line, with a line that says what it does. */
export interface Example {
  readonly comment: string
  /** As typed in a shell, `credproxy ...` (maybe with a pipe or a redirection). */
  readonly line: string
}

/** A command of the `credproxy` tree with what its help shows besides @effect/cli's docs. */
export interface CommandEntry {
  /** The words that name it: `[]` for the root, `["token", "import"]`. */
  readonly path: ReadonlyArray<string>
  readonly command: AnyCommand
  /** One or two, shown at the end of its help. */
  readonly examples: ReadonlyArray<Example>
  readonly children: ReadonlyArray<CommandEntry>
}

/** The entry of the command named `name` (`"token import"`; `""` for the root), with its examples. */
export const entry = (
  name: string,
  command: AnyCommand,
  children: ReadonlyArray<CommandEntry> = []
): CommandEntry => ({
  path: name === "" ? [] : name.split(" "),
  command,
  examples: (EXAMPLES[name] ?? []).map(([comment, line]) => ({ comment, line })),
  children
})

/** Every entry of the tree, parents before their children. */
export const allEntries = (root: CommandEntry): Array<CommandEntry> => [
  root,
  ...root.children.flatMap(allEntries)
]

/** The arguments before `--` (after it they belong to `exec`'s command). */
const ownArgs = (args: ReadonlyArray<string>): ReadonlyArray<string> => {
  const end = args.indexOf("--")
  return end < 0 ? args : args.slice(0, end)
}

/**
 * The deepest command the arguments name: each word that is not an option
 * descends into the child of that name, the first other word ends the walk
 * (a positional argument, an option's value, or a typo left to @effect/cli).
 */
export const commandOf = (root: CommandEntry, args: ReadonlyArray<string>): CommandEntry => {
  let current = root
  for (const arg of ownArgs(args)) {
    if (arg.startsWith("-")) continue
    const child = current.children.find((c) => c.path[c.path.length - 1] === arg)
    if (child === undefined) break
    current = child
  }
  return current
}

/**
 * The command whose help the arguments ask for, or `undefined` when they ask
 * for something else: `-h` or `--help` anywhere before `--`, or a command
 * that only groups others named alone (`credproxy`, `credproxy token`).
 */
export const helpRequested = (root: CommandEntry, args: ReadonlyArray<string>): CommandEntry | undefined => {
  const own = ownArgs(args)
  const target = commandOf(root, args)
  if (own.includes("--help") || own.includes("-h")) return target
  return target.children.length > 0 && own.length === target.path.length ? target : undefined
}
