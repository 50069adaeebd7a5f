/**
 * A failure told to a person: what happened, and what to do about it, each
 * one sentence. Every error that ends a command (exit 1 or 2) and every error
 * of the client has both; `credproxy doctor` shows the same two parts as a
 * finding and its fix.
 */
export interface Explained {
  readonly what: string
  readonly fix: string
}

/** The one-line message of an explained failure. */
export const explain = ({ what, fix }: Explained): string => `${what}; ${fix}`
