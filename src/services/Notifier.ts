import * as Context from "effect/Context"

/**
 * Tells the user on the host that something waits for them (a use to
 * confirm), where the desktop offers a way: best effort, never blocking,
 * never failing. The text holds names only, never a secret.
 */
export interface NotifierShape {
  readonly notify: (title: string, body: string) => void
}

export class Notifier extends Context.Tag("credproxy/Notifier")<Notifier, NotifierShape>() {}
