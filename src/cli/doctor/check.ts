import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type { StoreKind } from "../../config/store-kind.js"
import type { Explained } from "../../errors/explained.js"

/**
 * `credproxy doctor` is a list of independent checks. Each check is an
 * Effect that cannot fail and gives one or more findings (a line each:
 * ok / warn / fail, with the fix in one sentence for anything not ok),
 * bounded in time by `bounded`. A new check (the keyring store's, say) is
 * one more entry in a list: `host-checks.ts` or `sandbox-checks.ts`.
 */

export type Status = "ok" | "warn" | "fail" | "skip"

export interface Finding {
  /** The check's short name: `socket-dir`, `provider anthropic`. */
  readonly check: string
  readonly status: Status
  /** What was found, one line, never a secret. */
  readonly detail: string
  /** What to do, one sentence; set for warn and fail. */
  readonly fix?: string
}

/** What every check may look at: where to look, and on which side of the socket it runs. */
export interface DoctorInput {
  /** `sandbox`: the socket checks only; `host`: the host's set-up (and the socket checks when a socket is given). */
  readonly side: "host" | "sandbox"
  readonly dataDir: string
  readonly socketDir: string
  /** The socket to check, and where its path came from. */
  readonly socket?:
    | { readonly path: string; readonly from: "--socket" | "LLXPRT_CREDENTIAL_SOCKET" }
    | undefined
  readonly providersFile: string | undefined
  /** `--store` (else `$CREDPROXY_STORE`, else file): the store the host keeps credentials in. */
  readonly store: StoreKind
  /** `--provider`/`--bucket`: a token to ask for. */
  readonly token: { readonly provider: string; readonly bucket: string } | undefined
  /** A container runtime's mark was found (`/.dockerenv`, `/run/.containerenv`). */
  readonly inContainer: boolean
  readonly env: NodeJS.ProcessEnv
}

export interface Check {
  readonly name: string
  readonly run: (input: DoctorInput) => Effect.Effect<ReadonlyArray<Finding>>
}

export const ok = (check: string, detail: string): Finding => ({ check, status: "ok", detail })
export const warn = (check: string, detail: string, fix: string): Finding => ({
  check,
  status: "warn",
  detail,
  fix
})
export const fail = (check: string, detail: string, fix: string): Finding => ({
  check,
  status: "fail",
  detail,
  fix
})
export const skip = (check: string, detail: string): Finding => ({ check, status: "skip", detail })

/** A finding from an explained failure: its `what` and its `fix`. */
export const explained = (check: string, status: "warn" | "fail", { what, fix }: Explained): Finding => ({
  check,
  status,
  detail: what,
  fix
})

/** Time limits (real time, on the Effect Clock). The whole run stays under 10 s. */
export const BUDGET = {
  /** A provider's endpoint, discovery included. */
  endpoint: Duration.seconds(3),
  /** Connecting to a Unix socket: instant, or it fails. */
  connect: Duration.seconds(1),
  /** The handshake, and each request but `get_token`. */
  answer: Duration.seconds(2),
  /** `get_token` may wait for a refresh on the host. */
  getToken: Duration.seconds(3),
  /** Any one check, whatever it does. */
  check: Duration.seconds(8.5)
}

/**
 * Runs `check` within `budget`: a check that takes longer is one fail
 * finding saying so, and its work is interrupted.
 */
export const bounded =
  (budget: Duration.DurationInput) =>
  (check: Check): Check => ({
    name: check.name,
    run: (input) =>
      check.run(input).pipe(
        Effect.timeoutTo({
          duration: budget,
          onSuccess: (findings) => findings,
          onTimeout: () => [
            fail(
              check.name,
              `did not finish within ${Duration.format(budget)}`,
              "run doctor again; if it stays slow, check the disk and the network this check uses"
            )
          ]
        })
      )
  })
