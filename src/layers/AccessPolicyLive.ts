import * as Layer from "effect/Layer"
import { AccessPolicy, initialRules, makeAccessPolicy, type TokenPattern } from "../services/AccessPolicy.js"

/** The access policy of the start-up patterns (`--allow`, `--allow-key`), changeable while the server runs. */
export const layer = (tokenPatterns: ReadonlyArray<TokenPattern>, keyPatterns: ReadonlyArray<string>) =>
  Layer.sync(AccessPolicy, () => makeAccessPolicy(initialRules(tokenPatterns, keyPatterns)))
