import { describe, expect, it } from "vitest"
import { InFlightAborts } from "../src/server/egress/in-flight-aborts.js"
import { UpstreamAbort } from "../src/server/egress/upstream-abort.js"

describe("the upstream aborts in flight", () => {
  it("aborts at stop exactly the ones still in flight, whatever order they left in", () => {
    const inFlight = new InFlightAborts()
    const aborts = Array.from({ length: 5 }, () => new UpstreamAbort())
    for (const abort of aborts) inFlight.add(abort)
    inFlight.delete(aborts[1]!)
    inFlight.delete(aborts[4]!)
    inFlight.delete(aborts[1]!)
    inFlight.delete(new UpstreamAbort())
    expect(inFlight.size).toBe(3)
    inFlight.abortAll()
    expect(aborts.map((abort) => abort.aborted)).toEqual([true, false, true, true, false])
    for (const abort of [aborts[0]!, aborts[2]!, aborts[3]!]) inFlight.delete(abort)
    expect(inFlight.size).toBe(0)
  })
})
