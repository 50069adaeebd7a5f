import type { Style } from "../../lib/colors.js"
import { type CommandDoc, commandDoc, type Item } from "./command-doc.js"
import type { CommandEntry } from "./command-tree.js"

/**
 * The help of a command, laid out for people: a title line, the synopsis
 * with the command's options one a line under it (optional ones in
 * brackets, repeatable ones followed by `...`, each with its description in
 * a column), the arguments, and the examples last. Every line fits `width`
 * (100 columns at most); escape codes only when `style` adds them.
 */

export const MAX_HELP_WIDTH = 100
/** The description column starts at most this far in; a longer label puts its description on the next line. */
const MAX_LABEL_COLUMN = 34
const GAP = 2

export interface HelpOptions {
  readonly program: string
  readonly version: string
  /** Columns available; clamped to 60..100. */
  readonly width: number
  readonly style: (style: Style, text: string) => string
}

/** Splits `text` into lines of at most `width` characters at spaces (a longer word gets a line of its own). */
export const wrap = (text: string, width: number): Array<string> => {
  const lines: Array<string> = []
  let line = ""
  for (const word of text.split(/\s+/).filter((w) => w !== "")) {
    if (line === "") line = word
    else if (line.length + 1 + word.length <= width) line += ` ${word}`
    else {
      lines.push(line)
      line = word
    }
  }
  if (line !== "") lines.push(line)
  return lines
}

/** Rows of a label and its description; descriptions wrap within their column. */
const table = (rows: ReadonlyArray<readonly [string, string]>, indent: number, width: number) => {
  // Labels longer than the column's limit put their description on the next line instead.
  const fitting = rows.map(([left]) => left.length).filter((length) => length <= MAX_LABEL_COLUMN)
  const column = indent + Math.max(0, ...fitting) + GAP
  const pad = " ".repeat(column)
  return rows.flatMap(([left, right]) => {
    const text = wrap(right, width - column)
    const head = " ".repeat(indent) + left
    if (head.length + GAP > column || text.length === 0) {
      return [head, ...text.map((line) => pad + line)]
    }
    return [head.padEnd(column) + (text[0] ?? ""), ...text.slice(1).map((line) => pad + line)]
  })
}

const synopsisLabel = (item: Item): string => {
  const repeated = item.repeated ? "..." : ""
  // `[--allow SPEC]...`: optional, and may be given again.
  return item.optional ? `[${item.label}]${repeated}` : `${item.label}${repeated}`
}

const heading = (options: HelpOptions, text: string) => options.style("bold", text)

const title = (entry: CommandEntry, doc: CommandDoc, options: HelpOptions): Array<string> => {
  const name = [options.program, ...entry.path].join(" ")
  const named = entry.path.length === 0 ? `${name} ${options.version}` : name
  const [first = "", ...rest] = wrap(`${named} - ${doc.description}`, options.width)
  return [heading(options, named) + first.slice(named.length), ...rest]
}

const examplesOf = (entry: CommandEntry, options: HelpOptions): Array<string> =>
  entry.examples.length === 0
    ? []
    : [
        "",
        heading(options, "Examples:"),
        ...entry.examples.flatMap((example, index) => [
          ...(index > 0 ? [""] : []),
          ...wrap(`# ${example.comment}`, options.width - 4).map((line) => `  ${line}`),
          `  ${example.line}`
        ])
      ]

const leaf = (entry: CommandEntry, doc: CommandDoc, options: HelpOptions): Array<string> => {
  const command = [options.program, ...entry.path, ...doc.args.map(synopsisLabel)].join(" ")
  const lines = [
    "",
    heading(options, "Usage:"),
    `  ${command}`,
    ...table(
      doc.options.map((item) => [synopsisLabel(item), item.description] as const),
      4,
      options.width
    )
  ]
  if (doc.args.length > 0) {
    lines.push(
      "",
      heading(options, "Arguments:"),
      ...table(
        doc.args.map((item) => [item.label, item.description] as const),
        2,
        options.width
      )
    )
  }
  if (doc.options.some((item) => item.optional || item.repeated)) {
    lines.push("", "[ ] optional, ... may be given more than once")
  }
  return lines
}

/** A command that groups others: its subcommands, each with its description. */
const group = (entry: CommandEntry, options: HelpOptions): Array<string> => {
  const leaves = (e: CommandEntry): Array<CommandEntry> =>
    e.children.length === 0 ? [e] : e.children.flatMap(leaves)
  const rows = entry.children
    .flatMap(leaves)
    .map(
      (child) =>
        [child.path.slice(entry.path.length).join(" "), commandDoc(child.command).description] as const
    )
  const name = [options.program, ...entry.path].join(" ")
  const lines = [
    "",
    heading(options, "Usage:"),
    `  ${name} COMMAND [options]`,
    "",
    heading(options, "Commands:")
  ]
  lines.push(...table(rows, 2, options.width))
  if (entry.path.length === 0) {
    lines.push(
      "",
      heading(options, "Options:"),
      ...table(
        [
          ["-h, --help", "show this help; after a command, that command's options and examples"],
          ["--version", "print the version"],
          ["--completions sh|bash|fish|zsh", "print a completion script for that shell"]
        ],
        2,
        options.width
      )
    )
  }
  lines.push("", `Run '${name} COMMAND --help' for a command's options and examples.`)
  return lines
}

/** The help text of `entry`, ending with a newline. */
export const renderHelp = (entry: CommandEntry, options: HelpOptions): string => {
  const width = Math.max(60, Math.min(MAX_HELP_WIDTH, options.width))
  const sized = { ...options, width }
  const doc = commandDoc(entry.command)
  const body = entry.children.length > 0 ? group(entry, sized) : leaf(entry, doc, sized)
  return `${[...title(entry, doc, sized), ...body, ...examplesOf(entry, sized)].join("\n")}\n`
}
