/** The little of `oidc-provider` (a devDependency without bundled types) that the tests use. */
declare module "oidc-provider" {
  import type { IncomingMessage, ServerResponse } from "node:http"

  export interface KoaContext {
    readonly method: string
    readonly path: string
    /** The answer's body (an object until it is sent), replaceable by a middleware after `next()`. */
    body: unknown
    /** Set by the provider once it has parsed a request (its parameters, secrets included). */
    readonly oidc?: { readonly params?: Readonly<Record<string, unknown>> }
  }

  export default class Provider {
    constructor(issuer: string, configuration?: Readonly<Record<string, unknown>>)
    callback(): (req: IncomingMessage, res: ServerResponse) => void
    use(middleware: (ctx: KoaContext, next: () => Promise<void>) => Promise<void>): void
  }
}
