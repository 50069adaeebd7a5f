import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as tls from "node:tls"
import * as Options from "@effect/cli/Options"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { readSecretFile } from "../config/capability-token-file.js"
import { type EgressListen, parseEgressListen } from "../config/egress-listen.js"
import { loadRoutes } from "../config/egress-routes.js"
import { errorCode } from "../errors/errors.js"
import { UsageError } from "../errors/usage.js"
import type { EgressSettings } from "../server/egress/egress-server.js"

/** The options of egress mode (docs/PROTOCOL.md §23), shared by `serve` and `exec`. */
export const egressOptions = {
  egress: Options.file("egress").pipe(
    Options.withPseudoName("FILE"),
    Options.withDescription(
      "egress mode: the routes file; the sandbox calls providers through credproxy with a phantom, the real key or token is added on the host"
    ),
    Options.optional
  ),
  egressListen: Options.text("egress-listen").pipe(
    Options.withPseudoName("ADDR"),
    Options.withDescription(
      "where the egress proxy listens: 127.0.0.1:PORT (port 0 = any free) or unix (a socket beside the credential socket); default unix for serve, 127.0.0.1:0 for exec"
    ),
    Options.optional
  ),
  egressPhantomFile: Options.file("egress-phantom-file").pipe(
    Options.withPseudoName("FILE"),
    Options.withDescription("the phantom the sandbox sends instead of a credential (a 0600 file of yours)"),
    Options.optional
  ),
  egressCa: Options.file("egress-ca").pipe(
    Options.withPseudoName("FILE"),
    Options.withDescription("a PEM file of CA certificates to trust for upstreams, beside Node's own"),
    Options.optional
  )
}

export interface EgressFlags {
  readonly egress: Option.Option<string>
  readonly egressListen: Option.Option<string>
  readonly egressPhantomFile: Option.Option<string>
  readonly egressCa: Option.Option<string>
}

const readCa = (file: string): Effect.Effect<string, UsageError> =>
  Effect.try({
    try: () => fs.readFileSync(file, "utf8"),
    catch: (cause) =>
      new UsageError({
        reason: "EgressCa",
        subject: file,
        detail: `cannot be read (${errorCode(cause) ?? "error"})`
      })
  }).pipe(
    Effect.filterOrFail(
      (pem) => pem.includes("-----BEGIN CERTIFICATE-----") && isUsableCa(pem),
      () => new UsageError({ reason: "EgressCa", subject: file, detail: "holds no usable PEM certificate" })
    )
  )

/** Whether the PEM's certificates parse and TLS takes them (checked here: a bad file is exit 2, not a crash later). */
const isUsableCa = (pem: string): boolean => {
  try {
    const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? []
    for (const block of blocks) new crypto.X509Certificate(block)
    tls.createSecureContext({ ca: pem })
    return blocks.length > 0
  } catch {
    return false
  }
}

/**
 * The egress settings of the flags, checked before anything starts (exit 2
 * naming the file, route and field): none without `--egress`. `phantom` is
 * `exec`'s generated one; `serve` reads `--egress-phantom-file`.
 */
export const resolveEgress = (
  flags: EgressFlags,
  defaults: { readonly listen: EgressListen; readonly phantom?: string | undefined }
): Effect.Effect<EgressSettings | undefined, UsageError> =>
  Effect.gen(function* () {
    if (Option.isNone(flags.egress)) {
      const stray = [
        ["--egress-listen", flags.egressListen],
        ["--egress-phantom-file", flags.egressPhantomFile],
        ["--egress-ca", flags.egressCa]
      ] as const
      const given = stray.find(([, value]) => Option.isSome(value))
      if (given !== undefined) return yield* new UsageError({ reason: "EgressOnly", subject: given[0] })
      return undefined
    }
    const routes = yield* loadRoutes(flags.egress.value)
    const listen = Option.isSome(flags.egressListen)
      ? yield* parseEgressListen(flags.egressListen.value)
      : defaults.listen
    const phantom = Option.isSome(flags.egressPhantomFile)
      ? yield* readSecretFile(flags.egressPhantomFile.value, "PhantomFile")
      : defaults.phantom
    if (phantom === undefined)
      return yield* new UsageError({ reason: "NoPhantom", subject: "--egress-phantom-file" })
    const ca = Option.isSome(flags.egressCa) ? yield* readCa(flags.egressCa.value) : undefined
    return { routes, phantom, listen, ca }
  })
