import * as Schema from "effect/Schema"
import { type Explained, explain } from "../errors/explained.js"

/** The message of a broken connection, which is never silently replaced (the session must restart). */
export const CONNECTION_LOST_MESSAGE = "Credential proxy connection lost. Restart the session."

/** The connection to the proxy broke; this client will not reconnect (the session must restart). */
export class ConnectionLost extends Schema.TaggedError<ConnectionLost>()("ConnectionLost", {}) {
  override get message(): string {
    return CONNECTION_LOST_MESSAGE
  }
}

const doctor = "run credproxy doctor in the sandbox"

/** Why a connect to the proxy's socket failed, by the system's error code, and what to do. */
export const connectFailure = (socket: string, code: string | undefined): Explained => {
  const what = `cannot connect to ${socket} (${code ?? "error"})`
  switch (code) {
    case "ENOENT":
      return {
        what: `${what}: there is no socket there`,
        fix: "mount the proxy's socket directory at the same path, and check that the proxy runs"
      }
    case "ECONNREFUSED":
      return {
        what: `${what}: no proxy listens there (it was stopped or killed)`,
        fix: "start the proxy again and use the socket path it prints"
      }
    case "EACCES":
    case "EPERM":
      return {
        what: `${what}: this user may not open it`,
        fix: 'run as the proxy\'s user (docker --user "$(id -u):$(id -g)", podman --userns=keep-id) or start it with --allow-uid'
      }
    case "ENAMETOOLONG":
      return {
        what: `${what}: the path is too long for a Unix socket`,
        fix: "use a shorter --socket-dir on the host"
      }
    case "ENOTSOCK":
      return {
        what: `${what}: it is not a socket`,
        fix: "set LLXPRT_CREDENTIAL_SOCKET to the path the proxy prints"
      }
    default:
      return { what, fix: doctor }
  }
}

/** What the handshake's refusal (its wire code) means for the client, and what to do. */
export const handshakeRefusal = (code: string | undefined, text: string | undefined): Explained => {
  const what = `the proxy refused the handshake (${code ?? "?"}: ${text ?? "no reason given"})`
  switch (code) {
    case "UNAUTHORIZED":
      return {
        what,
        fix: "hand over the proxy's capability token (LLXPRT_CAPABILITY_FD from credproxy exec, or LLXPRT_CAPABILITY_FILE)"
      }
    case "UNKNOWN_VERSION":
      return { what, fix: "update credproxy on the host or in the sandbox so both speak a common version" }
    default:
      return { what, fix: "see the proxy's log on the host" }
  }
}

/** The proxy could not be reached, or refused the handshake. */
export class ProxyUnavailable extends Schema.TaggedError<ProxyUnavailable>()("ProxyUnavailable", {
  reason: Schema.Literal("NoSocket", "Connect", "HandshakeClosed", "HandshakeRefused", "CapabilityToken"),
  /** The socket path, for `Connect`. */
  socket: Schema.optional(Schema.String),
  /** The system's error code (`Connect`) or the answer's wire code (`HandshakeRefused`). */
  code: Schema.optional(Schema.String),
  /** The proxy's text (`HandshakeRefused`), or why the token could not be read (`CapabilityToken`). */
  detail: Schema.optional(Schema.String)
}) {
  get explained(): Explained {
    return UNAVAILABLE[this.reason](this)
  }

  override get message(): string {
    return `Credential proxy unavailable: ${explain(this.explained)}`
  }
}

const UNAVAILABLE: Record<ProxyUnavailable["reason"], (error: ProxyUnavailable) => Explained> = {
  NoSocket: () => ({
    what: "LLXPRT_CREDENTIAL_SOCKET is not set",
    fix: "start the program with credproxy exec, or pass the variable into the container (-e LLXPRT_CREDENTIAL_SOCKET)"
  }),
  Connect: (error) => connectFailure(error.socket ?? "the socket", error.code),
  HandshakeClosed: () => ({
    what: "the proxy closed the connection during the handshake (it does so for another user's connection, or past its connection limit)",
    fix: doctor
  }),
  HandshakeRefused: (error) => handshakeRefusal(error.code, error.detail),
  CapabilityToken: (error) => ({
    what: `cannot read the capability token: ${error.detail ?? "error"}`,
    fix: "hand over the proxy's token on LLXPRT_CAPABILITY_FD, or as a readable file in LLXPRT_CAPABILITY_FILE"
  })
}

/** No answer within the client's request timeout (30 s). */
export class RequestTimeout extends Schema.TaggedError<RequestTimeout>()("RequestTimeout", {
  op: Schema.String
}) {
  override get message(): string {
    return `Credential proxy did not answer ${this.op} in time; it may be stuck or overloaded: see its log on the host`
  }
}

/** What to do about each error answer (PROTOCOL.md §11), for the person reading the message. */
const ANSWER_FIXES: Readonly<Record<string, string>> = {
  NOT_FOUND: "nothing is stored under that name on the host (credproxy token list, credproxy key list)",
  UNAUTHORIZED: "the proxy does not serve this name: start it with --allow or --allow-key for it",
  FORBIDDEN: "the proxy is restricted: it serves only reads of names that are allowed and stored",
  REAUTH_REQUIRED: "log in again on the host (credproxy token import)",
  PROVIDER_NOT_FOUND: "add the provider to the providers file on the host",
  INVALID_REQUEST: "the proxy did not accept this request: update credproxy/client",
  INTERNAL_ERROR: "see the proxy's log on the host",
  UNKNOWN_VERSION: "update credproxy on the host or in the sandbox"
}

/** The proxy answered with an error; `code` is the wire code (PROTOCOL.md §11). */
export class ProxyResponseError extends Schema.TaggedError<ProxyResponseError>()("ProxyResponseError", {
  op: Schema.String,
  code: Schema.String,
  reason: Schema.String,
  retryAfter: Schema.optional(Schema.Number)
}) {
  /** The code and the proxy's text, and what to do (nothing for an answer that needs nothing: `CANCELLED`). */
  get explained(): { readonly what: string; readonly fix: string | undefined } {
    const fix = this.code === "RATE_LIMITED" ? `retry in ${this.retryAfter ?? 1} s` : ANSWER_FIXES[this.code]
    return { what: `${this.code}: ${this.reason}`, fix }
  }

  override get message(): string {
    const { what, fix } = this.explained
    return fix === undefined ? what : `${what}; ${fix}`
  }
}

/**
 * The proxy sent something this client cannot read: a frame over the
 * protocol's size limit, a frame that is not a JSON object, or an answer
 * without the protocol's shape. The connection is given up like a lost one.
 */
export class ProtocolViolation extends Schema.TaggedError<ProtocolViolation>()("ProtocolViolation", {
  reason: Schema.Literal("OversizeFrame", "NotJson", "NotAnAnswer", "UnexpectedData")
}) {
  override get message(): string {
    const what = {
      OversizeFrame: "a frame larger than the protocol allows",
      NotJson: "a frame that is not a JSON object",
      NotAnAnswer: "a frame that is not a protocol answer",
      UnexpectedData: "an answer whose data does not fit the operation"
    }[this.reason]
    return `Credential proxy sent ${what}. Restart the session.`
  }
}

export type ProxyClientError =
  | ConnectionLost
  | ProxyUnavailable
  | RequestTimeout
  | ProxyResponseError
  | ProtocolViolation

/**
 * A login ended without a token: refused at the provider (`ACCESS_DENIED`),
 * out of time (`EXPIRED_TOKEN`), or failed (`EXCHANGE_FAILED`; also when a
 * pasted code is needed and no `readCode` was given). `code` is one of those.
 */
export class LoginFailed extends Schema.TaggedError<LoginFailed>()("LoginFailed", {
  code: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `${this.code}: ${this.reason}`
  }
}
