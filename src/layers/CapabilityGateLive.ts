import * as Layer from "effect/Layer"
import { CapabilityGate, makeCapabilityGate } from "../services/CapabilityGate.js"

/** The capability gate for the start-up secret; `undefined` admits every handshake. */
export const layer = (secret: string | undefined) => Layer.succeed(CapabilityGate, makeCapabilityGate(secret))
