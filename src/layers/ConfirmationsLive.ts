import * as crypto from "node:crypto"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FiberId from "effect/FiberId"
import * as Layer from "effect/Layer"
import { Unauthorized } from "../errors/errors.js"
import { monotonicMillis } from "../lib/monotonic.js"
import { AuditLog } from "../services/AuditLog.js"
import {
  type Asker,
  CONFIRM_TIMEOUT_MS,
  type ConfirmAnswer,
  Confirmations,
  type ConfirmationsShape,
  MAX_WAITING
} from "../services/Confirmations.js"
import { Notifier } from "../services/Notifier.js"

const NOT_CONFIRMED = new Unauthorized({ reason: "NotConfirmed" })

/** One question to the user: every use of `credential` by one identity while it is open waits on it. */
interface Prompt {
  readonly id: string
  readonly key: string
  readonly asker: Asker
  readonly credential: string
  readonly op: string
  /** Monotonic Clock ms after which it is refused. */
  readonly deadline: number
  readonly answer: Deferred.Deferred<ConfirmAnswer>
  waiters: number
}

const keyOf = (identity: string, credential: string) => `${identity}\u0000${credential}`

/** Confirmations off: nothing is ever asked. */
const off: ConfirmationsShape = {
  enabled: false,
  approved: () => true,
  ask: () => Effect.void,
  waiting: () => [],
  answer: () => false
}

const make = Effect.gen(function* () {
  const clock = yield* Effect.clock
  const audit = yield* AuditLog
  const notifier = yield* Notifier
  const approvedForSession = new Set<string>()
  const prompts = new Map<string, Prompt>()
  const byKey = new Map<string, Prompt>()

  const peerFields = (asker: Asker) => ({
    ...(asker.peerPid === undefined ? {} : { peerPid: asker.peerPid }),
    ...(asker.peerUid === undefined ? {} : { peerUid: asker.peerUid })
  })

  /** Closes a prompt with `answer` (every waiter gets it) and logs the outcome. */
  const settle = (prompt: Prompt, answer: ConfirmAnswer, outcome: string): void => {
    if (prompts.get(prompt.id) !== prompt) return
    prompts.delete(prompt.id)
    byKey.delete(prompt.key)
    if (answer === "session") approvedForSession.add(prompt.key)
    Deferred.unsafeDone(prompt.answer, Effect.succeed(answer))
    audit.event("Info", "use confirmation ended", {
      credential: prompt.credential,
      op: prompt.op,
      outcome,
      ...peerFields(prompt.asker)
    })
  }

  const newId = (): string => {
    for (;;) {
      const id = crypto.randomBytes(4).toString("hex")
      if (!prompts.has(id)) return id
    }
  }

  const open = (asker: Asker, credential: string, op: string, key: string): Prompt => {
    const prompt: Prompt = {
      id: newId(),
      key,
      asker,
      credential,
      op,
      deadline: monotonicMillis(clock) + CONFIRM_TIMEOUT_MS,
      answer: Deferred.unsafeMake<ConfirmAnswer>(FiberId.none),
      waiters: 0
    }
    prompts.set(prompt.id, prompt)
    byKey.set(key, prompt)
    audit.event("Info", "use waiting for confirmation", { credential, op, ...peerFields(asker) })
    notifier.notify(
      "credproxy: confirm a use",
      `${asker.peerPid === undefined ? "a sandbox process" : `process ${asker.peerPid}`} wants ${credential} (${op}); run: credproxy approve`
    )
    return prompt
  }

  /** One use waits for its prompt's answer until the deadline; a use that goes away withdraws. */
  const wait = (prompt: Prompt): Effect.Effect<void, Unauthorized> =>
    Effect.suspend(() => {
      prompt.waiters++
      const left = Math.max(0, prompt.deadline - monotonicMillis(clock))
      return Deferred.await(prompt.answer).pipe(
        Effect.timeoutTo({
          duration: Duration.millis(left),
          onSuccess: (answer) => answer,
          onTimeout: (): ConfirmAnswer => {
            settle(prompt, "deny", "timed out")
            return "deny"
          }
        }),
        Effect.onInterrupt(() =>
          Effect.sync(() => {
            if (prompt.waiters === 1) settle(prompt, "deny", "withdrawn")
          })
        ),
        Effect.ensuring(Effect.sync(() => prompt.waiters--)),
        Effect.flatMap((answer) => (answer === "deny" ? Effect.fail(NOT_CONFIRMED) : Effect.void))
      )
    })

  return Confirmations.of({
    enabled: true,
    approved: (identity, credential) => approvedForSession.has(keyOf(identity, credential)),
    ask: (asker, credential, op) =>
      Effect.suspend(() => {
        const key = keyOf(asker.identity, credential)
        if (approvedForSession.has(key)) return Effect.void
        const pending = byKey.get(key)
        if (pending !== undefined) return wait(pending)
        if (prompts.size >= MAX_WAITING) {
          audit.event("Warning", "too many uses waiting for confirmation; refused", { limit: MAX_WAITING })
          return Effect.fail(NOT_CONFIRMED)
        }
        return wait(open(asker, credential, op, key))
      }),
    waiting: () => {
      const now = monotonicMillis(clock)
      return [...prompts.values()].map((prompt) => ({
        id: prompt.id,
        credential: prompt.credential,
        op: prompt.op,
        ...peerFields(prompt.asker),
        secondsLeft: Math.max(0, Math.ceil((prompt.deadline - now) / 1000))
      }))
    },
    answer: (id, answer) => {
      const prompt = prompts.get(id)
      if (prompt === undefined) return false
      settle(
        prompt,
        answer,
        answer === "deny" ? "denied" : answer === "once" ? "approved once" : "approved for the session"
      )
      return true
    }
  })
})

/** Confirmations for `serve --confirm` (asking through the admin socket and the desktop), or none. */
export const layer = (enabled: boolean): Layer.Layer<Confirmations, never, AuditLog | Notifier> =>
  enabled ? Layer.effect(Confirmations, make) : Layer.succeed(Confirmations, off)
