/**
 * Whether to write terminal escape codes (colours, bold) to `stream`: only
 * when it is a terminal, `NO_COLOR` is unset or empty (no-color.org) and
 * `TERM` is not `dumb`. Help, doctor's report and the pretty log all ask
 * here, each about the stream it writes to.
 */
export const colorsFor = (
  stream: { readonly isTTY?: boolean | undefined },
  env: NodeJS.ProcessEnv = process.env
): boolean => stream.isTTY === true && (env.NO_COLOR ?? "") === "" && env.TERM !== "dumb"

/** SGR codes for the few styles the command line uses. */
const CODES = { bold: 1, red: 31, green: 32, yellow: 33 } as const

export type Style = keyof typeof CODES

/** A styler: wraps text in the style's escape codes when colours are on, else returns it as it is. */
export const styler =
  (on: boolean) =>
  (style: Style, text: string): string =>
    on ? `\x1b[${CODES[style]}m${text}\x1b[0m` : text
