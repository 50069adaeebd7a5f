import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import { type FieldIssue, fieldIssueOf } from "../../protocol/parse-issue.js"
import { OAuthToken } from "../../protocol/token.js"

const decodeOAuthToken = Schema.decodeUnknownEither(OAuthToken)

/**
 * A stored token's text (a token file, a keyring entry) as a token; a
 * failure names the invalid field only, never the contents (they are secrets).
 */
export const decodeStoredToken = (text: string): Either.Either<OAuthToken, FieldIssue | undefined> =>
  Either.try({ try: (): unknown => JSON.parse(text), catch: () => undefined }).pipe(
    Either.flatMap((json) => Either.mapLeft(decodeOAuthToken(json), fieldIssueOf))
  )
