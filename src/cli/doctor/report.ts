import type { Style } from "../../lib/colors.js"
import type { Finding, Status } from "./check.js"

/** How the findings are shown: one line each (`--json`: one JSON object). */

const COLORS: Record<Status, Style | undefined> = {
  ok: "green",
  warn: "yellow",
  fail: "red",
  skip: undefined
}

export const failed = (findings: ReadonlyArray<Finding>): boolean => findings.some((f) => f.status === "fail")

const plural = (count: number, word: string) => `${count} ${word}${count === 1 ? "" : "s"}`

/** A line per finding (`status  check  detail`), the fix under anything not ok, and a summary. */
export const renderText = (
  title: string,
  findings: ReadonlyArray<Finding>,
  style: (style: Style, text: string) => string
): string => {
  const width = Math.min(24, Math.max(...findings.map((f) => f.check.length))) + 2
  const lines = [title]
  for (const finding of findings) {
    const color = COLORS[finding.status]
    const status = finding.status.padEnd(6)
    // A name longer than the column still gets two spaces before its detail.
    const name = finding.check.length + 2 > width ? `${finding.check}  ` : finding.check.padEnd(width)
    lines.push(`${color === undefined ? status : style(color, status)}${name}${finding.detail}`)
    if (finding.fix !== undefined && finding.status !== "ok") {
      lines.push(`${" ".repeat(6 + width)}fix: ${finding.fix}`)
    }
  }
  const failures = findings.filter((f) => f.status === "fail").length
  const warnings = findings.filter((f) => f.status === "warn").length
  lines.push(
    "",
    failures === 0 && warnings === 0
      ? "All checks passed."
      : `${plural(failures, "check")} failed, ${plural(warnings, "warning")}: the fixes are above.`
  )
  return `${lines.join("\n")}\n`
}

/** One JSON object: `{"side","ok","checks":[{"check","status","detail","fix"?}]}`. */
export const renderJson = (side: string, findings: ReadonlyArray<Finding>): string =>
  `${JSON.stringify({ side, ok: !failed(findings), checks: findings })}\n`
