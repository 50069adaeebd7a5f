import * as Layer from "effect/Layer"
import { AccessPolicy, makeAccessPolicy, type TokenPattern } from "../services/AccessPolicy.js"

/** The access policy of the start-up patterns (`--allow`, `--allow-key`). */
export const layer = (tokenPatterns: ReadonlyArray<TokenPattern>, keyPatterns: ReadonlyArray<string>) =>
  Layer.succeed(AccessPolicy, makeAccessPolicy(tokenPatterns, keyPatterns))
