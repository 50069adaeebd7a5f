import * as Option from "effect/Option"
import type * as ParseResult from "effect/ParseResult"
import * as AST from "effect/SchemaAST"

/**
 * Turns a schema failure into a short message that names the field and what
 * was expected, but never echoes the value received (it may be a secret).
 */
export const describeParseIssue = (
  issue: ParseResult.ParseIssue,
  path: ReadonlyArray<PropertyKey> = []
): string => {
  switch (issue._tag) {
    case "Pointer":
      return describeParseIssue(issue.issue, [
        ...path,
        ...(Array.isArray(issue.path) ? issue.path : [issue.path])
      ])
    case "Composite": {
      const first = Array.isArray(issue.issues) ? issue.issues[0] : issue.issues
      return first === undefined
        ? at(path, "is invalid")
        : describeParseIssue(first as ParseResult.ParseIssue, path)
    }
    case "Refinement": {
      if (issue.kind === "From") return describeParseIssue(issue.issue, path)
      return at(path, messageOf(issue.ast) ?? `must be ${expected(issue.ast)}`)
    }
    case "Transformation":
      return describeParseIssue(issue.issue, path)
    case "Missing":
      return at(path, "is required")
    case "Unexpected":
      return at(path, "is not allowed")
    case "Forbidden":
      return at(path, "could not be checked")
    case "Type":
      return at(path, messageOf(issue.ast) ?? `must be ${expected(issue.ast)}`)
  }
}

const at = (path: ReadonlyArray<PropertyKey>, text: string): string =>
  path.length === 0 ? `request ${text}` : `${path.map(String).join(".")} ${text}`

const messageOf = (ast: AST.AST): string | undefined => {
  const annotation = AST.getMessageAnnotation(ast)
  if (Option.isNone(annotation)) return undefined
  const produced = annotation.value(undefined as never)
  return typeof produced === "string" ? produced : undefined
}

const expected = (ast: AST.AST): string => {
  switch (ast._tag) {
    case "StringKeyword":
      return "a string"
    case "NumberKeyword":
      return "a number"
    case "BooleanKeyword":
      return "a boolean"
    case "TypeLiteral":
      return "an object"
    case "Literal":
      return JSON.stringify(ast.literal)
    case "Union":
      return ast.types.map(expected).join(" or ")
    default:
      return Option.getOrElse(
        Option.orElse(AST.getDescriptionAnnotation(ast), () => AST.getIdentifierAnnotation(ast)),
        () => "valid"
      )
  }
}
