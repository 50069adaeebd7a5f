import * as Schema from "effect/Schema"
import { LoginFlow } from "../protocol/login.js"
import { FieldIssue } from "../protocol/parse-issue.js"
import { type Explained, explain } from "./explained.js"
import type {
  ExchangeFailed,
  LoginSessionError,
  LoginSessionLimit,
  LoginStartFailed
} from "./login-errors.js"
import { describeProviderCall, ProviderCallFields } from "./provider-call.js"

/**
 * Every failure a request can end in, one tagged error per kind. Each carries
 * a reason from a fixed list and structured, safe fields (names, codes,
 * statuses); the text a client reads is built from them in one place,
 * `toWireError`. No error holds a store's or a library's raw error object.
 */

/** A frame, envelope, payload or name failed validation. `issue` says where, for `InvalidField` and `InvalidHandshake`. */
export class InvalidRequest extends Schema.TaggedError<InvalidRequest>()("InvalidRequest", {
  reason: Schema.Literal(
    "NotAnObject",
    "UnusableId",
    "UnknownOperation",
    "FrameTooLarge",
    "InvalidField",
    "InvalidHandshake",
    "TokenTooLarge",
    "InvalidPolicy",
    "NotForThisFlow",
    "MalformedCode"
  ),
  issue: Schema.optional(FieldIssue),
  /** `InvalidPolicy`: what is wrong with the pattern (admin socket only; it quotes the host user's own input). */
  detail: Schema.optional(Schema.String)
}) {}

/** The access policy, or the capability token, refused the request. */
export class Unauthorized extends Schema.TaggedError<Unauthorized>()("Unauthorized", {
  /** `NotConfirmed`: `serve --confirm` and the user refused, or did not answer in time, or too many wait. */
  reason: Schema.Literal("Policy", "CapabilityToken", "NotConfirmed")
}) {}

/** The per-connection rate limit was exceeded; `retryAfter` is in seconds (> 0). */
export class RateLimited extends Schema.TaggedError<RateLimited>()("RateLimited", {
  retryAfter: Schema.Number
}) {}

/**
 * The server will not do this: the store's limit on new keys per run is
 * reached (§22), or the connection is restricted (§19).
 */
export class Forbidden extends Schema.TaggedError<Forbidden>()("Forbidden", {
  /** `Restricted`: a restricted connection may not do this, or may not know whether it exists (§19). */
  reason: Schema.Literal("StoreLimit", "Restricted")
}) {}

/** The client cancelled the request (`cancel`, §20); it is answered at once, its work interrupted. */
export class Cancelled extends Schema.TaggedError<Cancelled>()("Cancelled", {}) {}

/** The server is stopping: a request that arrives while it drains is answered at once with this (§21). */
export class Stopping extends Schema.TaggedError<Stopping>()("Stopping", {}) {}

/**
 * Nothing is stored under the name asked for. `name` (`provider:bucket`, a
 * key's name) is set where a person reads the message: the command line.
 */
export class NotFound extends Schema.TaggedError<NotFound>()("NotFound", {
  what: Schema.Literal("token", "api key"),
  name: Schema.optional(Schema.String)
}) {
  override get message(): string {
    if (this.name === undefined) return `${this.what} not found`
    const list = this.what === "token" ? "credproxy token list" : "credproxy key list"
    return `${this.what} ${this.name} not found; '${list}' shows what is stored`
  }
}

/** No overlap between the client's version range and the server's. */
export class UnknownVersion extends Schema.TaggedError<UnknownVersion>()("UnknownVersion", {
  minVersion: Schema.Number,
  maxVersion: Schema.Number
}) {}

/** What a store was doing when it failed. */
export const StoreOperation = Schema.Literal("open", "get", "save", "remove", "list", "lock", "set")
export type StoreOperation = typeof StoreOperation.Type

/**
 * A store call failed. `reason` sorts it; `code` is the system's error code
 * (`EACCES`, `ENOSPC`, ...) when there is one, for the host log; `issue`
 * names the field of a stored token that is invalid. Never a file's content.
 */
export class StoreFailure extends Schema.TaggedError<StoreFailure>()("StoreFailure", {
  operation: StoreOperation,
  reason: Schema.Literal(
    "Io",
    "Corrupt",
    "NotAFile",
    "TooLarge",
    "Unserializable",
    "LockHeld",
    "Link",
    "Unsafe",
    "Moved",
    "HostStore",
    "KeyringUnreachable",
    "KeyringRefused",
    "KeyringTimeout"
  ),
  code: Schema.optional(Schema.String),
  issue: Schema.optional(FieldIssue)
}) {
  get explained(): Explained {
    const field =
      this.issue === undefined ? "" : ` (${this.issue.path.join(".") || "token"} ${this.issue.rule})`
    const code = this.code === undefined ? "" : ` [${this.code}]`
    return {
      what: `credential store failed to ${this.operation}: ${STORE_FAILURES[this.reason]}${field}${code}`,
      fix: STORE_FIXES[this.reason]
    }
  }

  override get message(): string {
    return explain(this.explained)
  }

  /** A failure of the file system or another I/O call; only the error's code is kept. */
  static io(operation: StoreOperation, cause: unknown): StoreFailure {
    const code = errorCode(cause)
    return new StoreFailure({ operation, reason: "Io", ...(code === undefined ? {} : { code }) })
  }
}

const STORE_FAILURES: Record<StoreFailure["reason"], string> = {
  Io: "input/output error",
  Corrupt: "the stored value is not valid",
  NotAFile: "the entry is not a regular file",
  TooLarge: "the stored value is too large",
  Unserializable: "the value cannot be serialized",
  LockHeld: "the lock stayed held by another process",
  Link: "a symbolic link is where a file of the store belongs",
  Unsafe: "a directory of the store is not private to this user",
  Moved: "a directory of the store was moved during the write",
  HostStore: "the host's store failed",
  KeyringUnreachable: "the keyring cannot be reached",
  KeyringRefused: "the keyring refused the call (locked, a denied prompt, or its daemon gone)",
  KeyringTimeout: "the keyring did not answer in time"
}

/** What to do about each kind of store failure, for the person reading the message. */
const STORE_FIXES: Record<StoreFailure["reason"], string> = {
  Io: "check the data directory's permissions and free space (credproxy doctor)",
  Corrupt: "remove the entry and store it again",
  NotAFile: "remove what is there and store the value again",
  TooLarge: "remove the entry and store it again",
  Unserializable: "store plain JSON values",
  LockHeld: "retry once the other credproxy command has finished",
  Link: "remove the link and store the value again",
  Unsafe: "chmod 700 the store's directories (credproxy doctor names them)",
  Moved: "retry, and find out what moves the store's directories",
  HostStore: "see the host program's own log",
  KeyringUnreachable: "start the keyring daemon in this session, or use --store file",
  KeyringRefused: "unlock the keyring (log in to the desktop session), or use --store file",
  KeyringTimeout: "check that the keyring daemon is running and responsive, or use --store file"
}

/** Node's error code of a failed system call (`ENOENT`, ...), if the value carries one. */
export const errorCode = (error: unknown): string | undefined =>
  typeof error === "object" && error !== null && "code" in error && typeof error.code === "string"
    ? error.code
    : undefined

/** A store call did not finish within its deadline. */
export class StoreTimeout extends Schema.TaggedError<StoreTimeout>()("StoreTimeout", {
  operation: StoreOperation
}) {
  override get message(): string {
    return `credential store did not finish ${this.operation} in time; retry, and check the disk that holds the data directory`
  }
}

/** A response would exceed the frame limit; it is never sent. */
export class ResponseTooLarge extends Schema.TaggedError<ResponseTooLarge>()("ResponseTooLarge", {
  bytes: Schema.Number
}) {}

/** A handler died unexpectedly; the connection and the server carry on. `name` is the defect's class, for the log. */
export class HandlerDefect extends Schema.TaggedError<HandlerDefect>()("HandlerDefect", {
  name: Schema.String
}) {}

/**
 * `refresh_token` or a login for a provider the host has no configuration for
 * (PROTOCOL.md §16); for a login, `login` says which flow the configured
 * provider cannot run and what it lacks (§17).
 */
export class ProviderNotFound extends Schema.TaggedError<ProviderNotFound>()("ProviderNotFound", {
  provider: Schema.String,
  login: Schema.optional(
    Schema.Struct({
      flow: LoginFlow,
      missing: Schema.Literal("authorizationEndpoint", "deviceAuthorizationEndpoint", "redirectUri")
    })
  )
}) {
  override get message(): string {
    if (this.login === undefined) {
      return `provider ${this.provider} is not configured (add it to the providers file)`
    }
    const { flow, missing } = this.login
    const fix =
      missing === "redirectUri"
        ? "set login.redirectUri in the providers file"
        : `give ${missing} in the providers file, or an issuer whose metadata has it`
    return `provider ${this.provider} cannot log in with ${flow}: it has no ${missing} (${fix})`
  }
}

/**
 * The host must log in again: no refresh token is stored (`NoRefreshToken`),
 * or the provider rejected it (`Rejected`: invalid_grant or 401), in which
 * case the stored refresh token has been cleared.
 */
export class ReauthRequired extends Schema.TaggedError<ReauthRequired>()("ReauthRequired", {
  reason: Schema.Literal("NoRefreshToken", "Rejected")
}) {
  override get message(): string {
    return this.reason === "Rejected"
      ? "the provider rejected the refresh token; log in again on the host"
      : "no refresh token is stored; log in again on the host"
  }
}

/** A refresh within the 30 s cooldown of the last one, while the stored token is no longer valid. */
export class RefreshCooldown extends Schema.TaggedError<RefreshCooldown>()("RefreshCooldown", {
  retryAfter: Schema.Number
}) {
  override get message(): string {
    return `the token was refreshed moments ago; retry in ${this.retryAfter} s`
  }
}

/** A refresh-token grant at a provider failed (the fields of `ProviderCallFields`). */
export class RefreshFailure extends Schema.TaggedError<RefreshFailure>()("RefreshFailure", {
  provider: Schema.String,
  ...ProviderCallFields
}) {
  get detail(): string {
    return describeProviderCall(this)
  }

  override get message(): string {
    const fix = {
      Transient: "retry later; credproxy doctor checks that the provider's endpoint answers",
      Rejected: `import a new token: credproxy token import ${this.provider}`,
      Invalid: "check the provider's entry in the providers file (credproxy doctor)"
    }[this.reason]
    return `refresh at provider ${this.provider} failed (${this.detail}); ${fix}`
  }
}

export type StoreError = StoreFailure | StoreTimeout

export type ProxyError =
  | InvalidRequest
  | Unauthorized
  | Forbidden
  | Cancelled
  | Stopping
  | RateLimited
  | NotFound
  | UnknownVersion
  | StoreFailure
  | StoreTimeout
  | ResponseTooLarge
  | HandlerDefect
  | ProviderNotFound
  | ReauthRequired
  | RefreshCooldown
  | RefreshFailure
  | LoginSessionError
  | LoginSessionLimit
  | LoginStartFailed
  | ExchangeFailed
