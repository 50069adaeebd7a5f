import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as AST from "effect/SchemaAST"

/**
 * Where a value failed its schema and what the schema wanted there. Built
 * from the schema alone (field names, annotations, refinement messages),
 * never from the value received: a value may be a secret. The one formatter
 * of schema failures for the wire, the CLI and the stores.
 */
export const FieldIssue = Schema.Struct({
  /** Property names from the decoded value down to the field; empty for the value itself. */
  path: Schema.Array(Schema.String),
  /** What the field must be: "is missing", "must be a string", a refinement's own message. */
  rule: Schema.String
})
export type FieldIssue = typeof FieldIssue.Type

/** The first problem of a failed decode. */
export const fieldIssueOf = (error: ParseResult.ParseError | ParseResult.ParseIssue): FieldIssue =>
  describe(ParseResult.isParseError(error) ? error.issue : error, [])

/** `payload.provider must be ...`; `root` names the value itself when the problem is at the top. */
export const formatFieldIssue = (issue: FieldIssue, root = "request"): string =>
  `${issue.path.length === 0 ? root : issue.path.join(".")} ${issue.rule}`

const describe = (issue: ParseResult.ParseIssue, path: ReadonlyArray<string>): FieldIssue => {
  switch (issue._tag) {
    case "Pointer":
      return describe(issue.issue, [
        ...path,
        ...(Array.isArray(issue.path) ? issue.path : [issue.path]).map(String)
      ])
    case "Composite": {
      // A union with its own message says what it accepts better than its first member's failure.
      const own = issue.ast._tag === "Union" ? annotatedMessage(issue.ast) : undefined
      if (own !== undefined) return { path, rule: own }
      const first = Array.isArray(issue.issues) ? issue.issues[0] : issue.issues
      return first === undefined
        ? { path, rule: "is invalid" }
        : describe(first as ParseResult.ParseIssue, path)
    }
    case "Refinement":
      if (issue.kind === "From") return describe(issue.issue, path)
      return {
        path,
        rule: annotatedMessage(issue.ast) ?? ownMessage(issue.issue) ?? `must be ${expected(issue.ast)}`
      }
    case "Transformation":
      return describe(issue.issue, path)
    case "Missing":
      return { path, rule: "is missing" }
    case "Unexpected":
      return { path, rule: "is not a known field" }
    case "Forbidden":
      return { path, rule: "could not be checked" }
    case "Type":
      return {
        path,
        rule: annotatedMessage(issue.ast) ?? ownMessage(issue) ?? `must be ${expected(issue.ast)}`
      }
  }
}

/** A `message` annotation on the schema. */
const annotatedMessage = (ast: AST.AST): string | undefined => {
  const annotation = AST.getMessageAnnotation(ast)
  if (Option.isNone(annotation)) return undefined
  const produced = annotation.value(undefined as never)
  return typeof produced === "string" ? produced : undefined
}

/** The message a filter returned for the failure (our filters describe the rule, never the value). */
const ownMessage = (issue: ParseResult.ParseIssue): string | undefined =>
  issue._tag === "Type" ? issue.message : undefined

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
