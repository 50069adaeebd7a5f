import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as ManagedRuntime from "effect/ManagedRuntime"
import type { DataOf, Operation, PayloadOf } from "../protocol/operations.js"
import * as ProxyClient from "./ProxyClient.js"
import { unrefClock } from "./unref-clock.js"

/**
 * Runs client Effects for Promise-based callers: one `ProxyClient` (one
 * connection) per runner, timers that do not hold the process open, and
 * failures rejected as the typed error itself (with its `code`), not wrapped.
 */
export class PromiseRunner {
  private readonly runtime: ManagedRuntime.ManagedRuntime<ProxyClient.ProxyClient, never>

  constructor(options: ProxyClient.ProxyClientOptions) {
    this.runtime = ManagedRuntime.make(ProxyClient.layer(options))
  }

  /**
   * Runs `effect`. `signal` interrupts it (the promise then rejects with the
   * signal's reason); `keepAlive` holds the process open while it runs (a
   * login waits between polls with nothing else in flight).
   */
  run<A, E>(
    effect: Effect.Effect<A, E, ProxyClient.ProxyClient>,
    options: { readonly signal?: AbortSignal | undefined; readonly keepAlive?: boolean } = {}
  ): Promise<A> {
    const { signal } = options
    const alive = options.keepAlive === true ? setInterval(() => {}, 1 << 30) : undefined
    return this.runtime
      .runPromiseExit(Effect.withClock(effect, unrefClock), signal === undefined ? {} : { signal })
      .then((exit) => {
        if (Exit.isSuccess(exit)) return exit.value
        if (signal?.aborted === true && Cause.isInterruptedOnly(exit.cause)) throw signal.reason
        throw Cause.squash(exit.cause)
      })
      .finally(() => clearInterval(alive))
  }

  /** One request of a known operation; resolves with its decoded `data`. */
  call<Op extends Operation>(op: Op, payload: PayloadOf<Op>): Promise<DataOf<Op>> {
    return this.run(Effect.flatMap(ProxyClient.ProxyClient, (client) => client.call(op, payload)))
  }

  /** Closes the connection; later calls fail. */
  dispose(): Promise<void> {
    return this.runtime.dispose()
  }
}
