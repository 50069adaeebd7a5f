import { execFileSync, spawnSync } from "node:child_process"
import * as path from "node:path"
import * as CliConfig from "@effect/cli/CliConfig"
import * as CommandDescriptor from "@effect/cli/CommandDescriptor"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as Effect from "effect/Effect"
import { afterEach, describe, expect, it } from "vitest"
import { commandTree, root } from "../src/cli/commands.js"
import { allEntries, type CommandEntry } from "../src/cli/help/command-tree.js"
import { killAllChildren, runCli } from "./support/cli.js"

/**
 * The help of every command (PROTOCOL.md §13, "Help"), through the real
 * binary: plain text when piped and under NO_COLOR on a real terminal, no
 * line over 100 columns, the options one a line, examples last and valid.
 */

afterEach(killAllChildren)

const BIN = path.resolve(import.meta.dirname, "../bin/credproxy.mjs")
const ESC = "\x1b"
const entries = allEntries(commandTree)
const name = (entry: CommandEntry) => ["credproxy", ...entry.path].join(" ")

/** Columns a line takes: code points (the help is ASCII, but a character is a column either way). */
const columns = (line: string) => [...line].length

const expectReadable = (text: string) => {
  expect(text).not.toContain(ESC)
  for (const line of text.split("\n")) expect(columns(line), line).toBeLessThanOrEqual(100)
}

/** Runs `command` on a real pseudo-terminal (util-linux `script`) and gives what the terminal showed. */
const onTerminal = (command: string, env: Readonly<Record<string, string>>): string => {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env }
  if (env.NO_COLOR === undefined) delete childEnv.NO_COLOR
  // `script -e` exits with the command's status; what the terminal showed is the point here.
  const shown = spawnSync("script", ["-qec", command, "/dev/null"], {
    env: childEnv,
    encoding: "utf8",
    timeout: 15_000
  })
  if (shown.error !== undefined) throw shown.error
  return shown.stdout
}

describe("help, piped (PROTOCOL.md §13)", () => {
  for (const entry of entries) {
    it(`${name(entry)} --help: no escape codes, no line over 100 columns, examples at the end`, async () => {
      const result = await runCli([...entry.path, "--help"], { env: { NO_COLOR: "" } })
      expect(result.code).toBe(0)
      expectReadable(result.stdout)
      expect(result.stdout.startsWith(`${name(entry)}`)).toBe(true)
      const examples = result.stdout.indexOf("\nExamples:\n")
      expect(examples).toBeGreaterThan(0)
      const tail = result.stdout.slice(examples)
      expect(entry.examples.length).toBeGreaterThanOrEqual(1)
      expect(entry.examples.length).toBeLessThanOrEqual(2)
      for (const example of entry.examples) expect(tail).toContain(`  ${example.line}\n`)
      // Nothing after the examples: they end the help.
      const last = entry.examples[entry.examples.length - 1]!
      expect(result.stdout.endsWith(`  ${last.line}\n`)).toBe(true)
    })
  }

  it("-h and --help anywhere before -- ask for the same help; after -- they belong to exec's command", async () => {
    const short = await runCli(["token", "show", "-h"])
    const long = await runCli(["token", "show", "anthropic", "--bucket", "b", "--help"])
    expect(short.stdout).toBe(long.stdout)
    expect(short.stdout).toMatch(/^credproxy token show - /)
    // After --, --help is an argument of exec's command: the bad --rate-limit is what counts.
    const dashed = await runCli(["exec", "--rate-limit", "abc", "--", "true", "--help"])
    expect(dashed.code).toBe(2)
    expect(dashed.stdout).not.toContain("Usage:")
  })

  it("credproxy alone, and a group alone, print their help with exit 0", async () => {
    const alone = await runCli([])
    expect(alone.code).toBe(0)
    expect(alone.stdout).toMatch(/^credproxy 0\.1\.0 - /)
    const group = await runCli(["token"])
    expect(group.code).toBe(0)
    expect(group.stdout).toMatch(/^credproxy token - /)
    for (const child of ["import", "show", "list", "remove", "refresh"])
      expect(group.stdout).toContain(`  ${child} `)
  })

  it("serve's synopsis: each option on its own line, optional ones in brackets, repeatable ones marked", async () => {
    const { stdout } = await runCli(["serve", "--help"])
    const usage = stdout.slice(stdout.indexOf("Usage:\n"), stdout.indexOf("\n\n", stdout.indexOf("Usage:\n")))
    const lines = usage.split("\n").slice(1)
    expect(lines[0]).toBe("  credproxy serve")
    const options = lines.filter((line) => /^ {4}\[/.test(line)).map((line) => line.trim().split(/\s{2,}/)[0])
    expect(options).toEqual([
      "[--data-dir DIR]",
      "[--store file|keyring]",
      "[--socket-dir DIR]",
      "[--allow SPEC]...",
      "[--allow-key SPEC]...",
      "[--rate-limit N]",
      "[--max-connections N]",
      "[--allow-uid UID]...",
      "[--capability-token-file FILE]",
      "[--providers FILE]",
      "[--restrict]",
      "[--confirm]",
      "[--egress FILE]",
      "[--egress-listen ADDR]",
      "[--egress-phantom-file FILE]",
      "[--egress-ca FILE]",
      "[-L, --log-level error|warn|info|debug|trace]",
      "[--log-format pretty|json]"
    ])
    expect(stdout).toContain("[ ] optional, ... may be given more than once")
  })

  it("every option and argument of every command has a description", () => {
    for (const entry of entries) {
      const help = execFileSync(process.execPath, [BIN, ...entry.path, "--help"], { encoding: "utf8" })
      for (const line of help.split("\n").filter((l) => /^ {4}\[/.test(l))) {
        // A label without a description on its line has it on the next one.
        const [, description] = line.trim().split(/\s{2,}/)
        const next = help.split("\n")[help.split("\n").indexOf(line) + 1] ?? ""
        expect(description ?? next.trim(), `${name(entry)}: ${line}`).not.toBe("")
      }
    }
  })
})

describe("help on a terminal", () => {
  it("NO_COLOR=1 on a pseudo-terminal: plain; without it the same help is styled", () => {
    const command = `${process.execPath} ${BIN} serve --help`
    const plain = onTerminal(command, { NO_COLOR: "1" })
    expect(plain).toContain("credproxy serve - ")
    expect(plain).not.toContain(ESC)
    const styled = onTerminal(command, {})
    expect(styled).toContain(`${ESC}[1m`)
  })

  it("a bad argument on a pseudo-terminal with NO_COLOR=1: a plain message and where the usage is", () => {
    const shown = onTerminal(`${process.execPath} ${BIN} serve --rate-limit abc`, { NO_COLOR: "1" })
    expect(shown).not.toContain(ESC)
    expect(shown).toContain('--rate-limit takes a whole number of 0 or more, not "abc"')
    expect(shown).toContain("credproxy: see 'credproxy serve --help' for the usage and examples")
  })
})

/** The words of an example after `credproxy`, up to a pipe or a redirection, quotes removed. */
const exampleArgs = (line: string): Array<string> => {
  const start = line.indexOf("credproxy ")
  const words = line.slice(start).match(/"[^"]*"|'[^']*'|\S+/g) ?? []
  const end = words.findIndex((word) => /^[|<>]/.test(word))
  return (end < 0 ? words : words.slice(0, end)).map((word) => word.replace(/^["'](.*)["']$/, "$1"))
}

describe("examples are real command lines", () => {
  for (const entry of entries) {
    for (const example of entry.examples) {
      it(`${example.line}: @effect/cli parses it into the command it illustrates`, async () => {
        const args = exampleArgs(example.line)
        expect(args[0]).toBe("credproxy")
        const directive = await Effect.runPromise(
          CommandDescriptor.parse(root.descriptor, args, CliConfig.defaultConfig).pipe(
            Effect.provide(NodeContext.layer)
          )
        )
        expect(directive._tag).toBe("UserDefined")
        if (directive._tag === "UserDefined") expect(directive.leftover).toEqual([])
        // It shows this command (or, for a group, one of its commands).
        expect(args.slice(1, 1 + entry.path.length)).toEqual(entry.path)
      })
    }
  }
})

describe("--completions and --version still come from @effect/cli", () => {
  for (const shell of ["bash", "fish", "zsh"]) {
    it(`--completions ${shell}: a script that knows the commands`, async () => {
      const result = await runCli(["--completions", shell])
      expect(result.code).toBe(0)
      for (const command of ["serve", "exec", "token", "doctor"]) expect(result.stdout).toContain(command)
    })
  }

  it("--version prints the version", async () => {
    const result = await runCli(["--version"])
    expect(result.code).toBe(0)
    expect(result.stdout.trim()).toBe("0.1.0")
  })
})
