import { type ChildProcess, spawn } from "node:child_process"
import { createRequire } from "node:module"
import { fileURLToPath } from "node:url"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import { StoreFailure, type StoreOperation } from "../../errors/errors.js"
import { KeyringUnavailable } from "../../errors/startup.js"

/**
 * The OS keyring, reached through one helper process (`keyring-helper.cjs`,
 * which says why it is a process) over its IPC channel. Every call has the
 * keyring deadline (KEYRING_CALL_TIMEOUT_MS, on the Effect Clock): a call
 * that passes it fails `KeyringTimeout`, and the helper is killed, since the
 * native call it is stuck in would hold every later one; the next call
 * starts a new helper (at most one a second, KEYRING_RESPAWN_PAUSE_MS).
 * Opening the keyring checks that it can be used (a write, a read and a
 * removal of an entry of this process's own) and fails `KeyringUnavailable`
 * when it cannot, so a locked or absent keyring stops a command at start-up.
 */

/** The keyring service name credproxy's entries are kept under (docs/PROTOCOL.md §21). */
export const KEYRING_SERVICE = "credproxy"
/** The deadline of one keyring call, shorter than the 15 s store deadline so a hung keyring is named as such. */
export const KEYRING_CALL_TIMEOUT_MS = 5_000
/** After a helper died, calls fail at once for this long (real time) before another is started. */
export const KEYRING_RESPAWN_PAUSE_MS = 1_000

/** What went wrong on the way to the keyring: the step, never the library's message. */
export type KeyringFailure = "Unreachable" | "Refused" | "Timeout" | "TooLarge" | "Unsupported"

export interface KeyringShape {
  /** The stored value of `account`, or `undefined`; a value over 64 KiB fails `TooLarge` unread. */
  readonly get: (
    account: string,
    operation: StoreOperation
  ) => Effect.Effect<string | undefined, StoreFailure>
  readonly set: (
    account: string,
    value: string,
    operation: StoreOperation
  ) => Effect.Effect<void, StoreFailure>
  /** Deletes `account`'s entry; succeeds when there was none. */
  readonly remove: (account: string, operation: StoreOperation) => Effect.Effect<void, StoreFailure>
  /** The accounts of credproxy's entries (`token:…`, `key:…`), at most `limit` of each kind, from the keyring's search. */
  readonly list: (limit: number) => Effect.Effect<ReadonlyArray<string>, StoreFailure>
}

export class Keyring extends Context.Tag("credproxy/Keyring")<Keyring, KeyringShape>() {}

export interface KeyringOptions {
  /** The service name (default KEYRING_SERVICE); tests use their own. */
  readonly service?: string | undefined
  readonly timeoutMs?: number | undefined
}

type Reply =
  | { readonly id: number; readonly ok: true; readonly value?: unknown }
  | { readonly id: number; readonly ok: false; readonly failure: KeyringFailure }
type Announcement = { readonly ready: boolean; readonly failure?: KeyringFailure }

interface Helper {
  readonly child: ChildProcess
  readonly pending: Map<number, (reply: Reply) => void>
  /** Why it is of no use, when it said so (`Unsupported`) or was killed (`Timeout`). */
  failure: KeyringFailure | undefined
}

const storeReasons: Record<KeyringFailure, StoreFailure["reason"]> = {
  Unreachable: "KeyringUnreachable",
  Unsupported: "KeyringUnreachable",
  Refused: "KeyringRefused",
  Timeout: "KeyringTimeout",
  TooLarge: "TooLarge"
}

const helperPath = fileURLToPath(new URL("./keyring-helper.cjs", import.meta.url))

/** Where the keyring library is, for the helper; `undefined` when it is not installed. */
const keyringModule = (): string | undefined => {
  try {
    return createRequire(import.meta.url).resolve("@napi-rs/keyring")
  } catch {
    return undefined
  }
}

/** One keyring call's failure as the helper reports it. */
class CallFailed {
  readonly _tag = "CallFailed"
  constructor(readonly failure: KeyringFailure) {}
}

/** The keyring for this scope: its helper is killed when the scope closes. */
export const make = (
  options: KeyringOptions = {}
): Effect.Effect<KeyringShape, KeyringUnavailable, Scope.Scope> =>
  Effect.gen(function* () {
    const service = options.service ?? KEYRING_SERVICE
    const timeoutMs = options.timeoutMs ?? KEYRING_CALL_TIMEOUT_MS
    const module = keyringModule()
    let current: Helper | undefined
    let pausedUntil = 0
    let nextId = 0

    const settle = (helper: Helper, failure: KeyringFailure): void => {
      helper.failure ??= failure
      const waiting = [...helper.pending.entries()]
      helper.pending.clear()
      for (const [id, resume] of waiting) resume({ id, ok: false, failure: helper.failure })
    }

    const stop = (helper: Helper, failure: KeyringFailure): void => {
      helper.child.kill("SIGKILL")
      settle(helper, failure)
      if (current === helper) {
        current = undefined
        pausedUntil = Date.now() + KEYRING_RESPAWN_PAUSE_MS
      }
    }

    /** Only a call waiting for its answer keeps the process alive. */
    const refWhileWaiting = (helper: Helper): void => {
      if (helper.pending.size > 0) helper.child.channel?.ref()
      else helper.child.channel?.unref()
    }

    const start = (loaded: string): Helper => {
      const child = spawn(process.execPath, [helperPath, service], {
        stdio: ["ignore", "ignore", "ignore", "ipc"],
        env: { ...process.env, CREDPROXY_KEYRING_MODULE: loaded }
      })
      child.unref()
      const helper: Helper = { child, pending: new Map(), failure: undefined }
      child.on("message", (message: Reply | Announcement) => {
        if ("ready" in message) {
          if (!message.ready) helper.failure = message.failure ?? "Unsupported"
          return
        }
        const resume = helper.pending.get(message.id)
        helper.pending.delete(message.id)
        resume?.(message)
        refWhileWaiting(helper)
      })
      const gone = () => stop(helper, "Unreachable")
      child.on("exit", gone)
      child.on("error", gone)
      return helper
    }

    const helperNow = (): Helper | KeyringFailure => {
      if (current !== undefined) return current
      if (module === undefined) return "Unsupported"
      if (Date.now() < pausedUntil) return "Unreachable"
      current = start(module)
      return current
    }

    const call = (message: Record<string, unknown>): Effect.Effect<unknown, CallFailed> =>
      Effect.suspend(() => {
        const helper = helperNow()
        if (typeof helper === "string") return Effect.fail(new CallFailed(helper))
        const id = ++nextId
        const answer = Effect.async<unknown, CallFailed>((resume) => {
          helper.pending.set(id, (reply) =>
            resume(reply.ok ? Effect.succeed(reply.value) : Effect.fail(new CallFailed(reply.failure)))
          )
          refWhileWaiting(helper)
          helper.child.send({ ...message, id }, (error) => {
            if (error !== null && helper.pending.delete(id))
              resume(Effect.fail(new CallFailed("Unreachable")))
          })
          return Effect.sync(() => {
            helper.pending.delete(id)
            refWhileWaiting(helper)
          })
        })
        return answer.pipe(
          Effect.timeoutFail({
            duration: Duration.millis(timeoutMs),
            onTimeout: () => {
              stop(helper, "Timeout")
              return new CallFailed("Timeout")
            }
          })
        )
      })

    const storeCall = (operation: StoreOperation, message: Record<string, unknown>) =>
      Effect.mapError(
        call(message),
        (error) => new StoreFailure({ operation, reason: storeReasons[error.failure] })
      )

    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        if (current !== undefined) stop(current, "Unreachable")
      })
    )
    yield* call({ op: "probe" }).pipe(
      Effect.mapError((error) => {
        const reason = error.failure === "TooLarge" ? "Refused" : error.failure
        return new KeyringUnavailable({ reason, timeoutMs })
      })
    )

    return Keyring.of({
      get: (account, operation) =>
        Effect.map(storeCall(operation, { op: "get", account }), (value) =>
          typeof value === "string" ? value : undefined
        ),
      set: (account, value, operation) => Effect.asVoid(storeCall(operation, { op: "set", account, value })),
      remove: (account, operation) => Effect.asVoid(storeCall(operation, { op: "delete", account })),
      list: (limit) =>
        Effect.map(storeCall("list", { op: "list", limit }), (value) =>
          Array.isArray(value)
            ? value.filter((account): account is string => typeof account === "string")
            : []
        )
    })
  })

export const layer = (options: KeyringOptions = {}): Layer.Layer<Keyring, KeyringUnavailable> =>
  Layer.scoped(Keyring, make(options))
