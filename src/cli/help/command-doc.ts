import * as CliConfig from "@effect/cli/CliConfig"
import * as Command from "@effect/cli/Command"
import type * as HelpDoc from "@effect/cli/HelpDoc"
import type * as Span from "@effect/cli/HelpDoc/Span"
import type * as Usage from "@effect/cli/Usage"
import * as Option from "effect/Option"

/**
 * What a command's help is made of, read from @effect/cli's own docs (its
 * `Usage` tree and `HelpDoc`), so that the option definitions stay the one
 * source: @effect/cli's layout cannot be configured (one line per synopsis,
 * escape codes always), so credproxy lays these out itself (`render-help.ts`).
 */

/** One option or argument of a command, as the synopsis shows it. */
export interface Item {
  /** `--data-dir DIR`, `-L, --log-level error|warn|info|debug|trace`, `PROVIDER`. */
  readonly label: string
  readonly optional: boolean
  readonly repeated: boolean
  /** The text given with `withDescription`. */
  readonly description: string
}

export interface CommandDoc {
  readonly description: string
  readonly options: ReadonlyArray<Item>
  readonly args: ReadonlyArray<Item>
}

// biome-ignore lint/suspicious/noExplicitAny: any command of the tree, whatever it needs and gives
export type AnyCommand = Command.Command<any, any, any, any>

const spanText = (span: Span.Span): string => {
  switch (span._tag) {
    case "Text":
    case "URI":
      return span.value
    case "Sequence":
      return spanText(span.left) + spanText(span.right)
    default:
      return spanText(span.value)
  }
}

/** The blocks of a doc in order, sequences flattened. */
const blocks = (doc: HelpDoc.HelpDoc): Array<HelpDoc.HelpDoc> =>
  doc._tag === "Sequence" ? [...blocks(doc.left), ...blocks(doc.right)] : doc._tag === "Empty" ? [] : [doc]

const paragraphs = (doc: HelpDoc.HelpDoc): Array<string> =>
  blocks(doc).flatMap((block) => (block._tag === "Paragraph" ? [spanText(block.value)] : []))

/** The blocks under each section header (`DESCRIPTION`, `ARGUMENTS`, `OPTIONS`, `COMMANDS`). */
const sections = (doc: HelpDoc.HelpDoc): Map<string, Array<HelpDoc.HelpDoc>> => {
  const found = new Map<string, Array<HelpDoc.HelpDoc>>()
  let current: Array<HelpDoc.HelpDoc> | undefined
  for (const block of blocks(doc)) {
    if (block._tag === "Header") {
      current = []
      found.set(spanText(block.value), current)
    } else current?.push(block)
  }
  return found
}

/**
 * The description of each entry of a section: an entry's doc is the type's
 * paragraph ("A user-defined piece of text."), then the description, then
 * notes @effect/cli adds ("This setting is optional.").
 */
const entryDescriptions = (section: ReadonlyArray<HelpDoc.HelpDoc> | undefined): Array<string> =>
  (section ?? []).flatMap((block) =>
    block._tag === "DescriptionList" ? block.definitions.map(([, doc]) => paragraphs(doc)[1] ?? "") : []
  )

interface Shape {
  readonly names: ReadonlyArray<string>
  readonly value: string | undefined
  readonly optional: boolean
  readonly repeated: boolean
}

/** Option names short first (`-L, --log-level`); an argument's `<NAME>` as `NAME`. */
const label = (names: ReadonlyArray<string>, value: string | undefined): string => {
  const shown = [...names]
    .map((name) => name.replace(/^<(.*)>$/, "$1"))
    .sort((a, b) => a.length - b.length)
    .join(", ")
  // Choices come as "a | b | c"; written without the spaces they read as one value.
  return value === undefined ? shown : `${shown} ${value.split(" | ").join("|")}`
}

/**
 * The options and arguments of a usage tree, in order. `Repeated` is how
 * `Options.repeated` and `Args.repeated` show: zero or more, so optional too.
 */
const shapes = (usage: Usage.Usage, optional = false, repeated = false): Array<Shape> => {
  switch (usage._tag) {
    case "Empty":
      return []
    case "Mixed":
      return [{ names: ["COMMAND"], value: undefined, optional, repeated }]
    case "Named":
      return [{ names: usage.names, value: Option.getOrUndefined(usage.acceptedValues), optional, repeated }]
    case "Optional":
      return shapes(usage.usage, true, repeated)
    case "Repeated":
      return shapes(usage.usage, true, true)
    case "Concat":
    case "Alternation":
      return [...shapes(usage.left, optional, repeated), ...shapes(usage.right, optional, repeated)]
  }
}

const isOption = (shape: Shape): boolean => shape.names.some((name) => name.startsWith("-"))

const config = CliConfig.make({ showBuiltIns: false })

const withDescriptions = (found: ReadonlyArray<Shape>, descriptions: ReadonlyArray<string>, what: string) => {
  // Both lists come from the same definitions in the same order; a mismatch means @effect/cli changed.
  if (found.length !== descriptions.length) {
    throw new Error(`help: ${found.length} ${what} in the usage but ${descriptions.length} described`)
  }
  return found.map(
    (shape, index): Item => ({
      label: label(shape.names, shape.value),
      optional: shape.optional,
      repeated: shape.repeated,
      description: descriptions[index] ?? ""
    })
  )
}

/** The docs of one command: its description, and its own options and arguments (no built-ins). */
export const commandDoc = (command: AnyCommand): CommandDoc => {
  const found = sections(Command.getHelp(command, config))
  // The first item of a command's usage is its own name.
  const items = shapes(Command.getUsage(command)).slice(1)
  return {
    description: (found.get("DESCRIPTION") ?? []).flatMap(paragraphs).join(" "),
    options: withDescriptions(items.filter(isOption), entryDescriptions(found.get("OPTIONS")), "options"),
    args: withDescriptions(
      items.filter((shape) => !isOption(shape) && shape.names[0] !== "COMMAND"),
      entryDescriptions(found.get("ARGUMENTS")),
      "arguments"
    )
  }
}
