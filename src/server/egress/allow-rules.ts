import type { AllowRule } from "../../config/egress-routes.js"

/** Whether `method path` is allowed; no rules at all means every request is. */
export const isAllowed = (
  rules: ReadonlyArray<AllowRule> | undefined,
  method: string,
  path: string
): boolean =>
  rules === undefined ||
  rules.some(
    (rule) => rule.method === method && (rule.prefix ? path.startsWith(rule.path) : path === rule.path)
  )

const DOT_SEGMENT = /(?:^|\/)(?:\.|%2e){1,2}(?:\/|$)/i

/**
 * A path the upstream could read differently from the allow rules: a `.` or
 * `..` segment (also percent-encoded), a backslash, or an encoded slash.
 * Such a request is refused rather than normalized.
 */
export const isAmbiguousPath = (path: string): boolean =>
  DOT_SEGMENT.test(path) || path.includes("\\") || /%2f|%5c/i.test(path)
