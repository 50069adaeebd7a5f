import { describe, expect, it } from "vitest"
import { UpstreamAbort } from "../src/server/egress/upstream-abort.js"

describe("the upstream abort signal", () => {
  it("calls each listener still registered once, and only on the first abort", () => {
    const signal = new UpstreamAbort()
    const calls: Array<string> = []
    const kept = () => calls.push("kept")
    const removed = () => calls.push("removed")
    signal.once("abort", kept)
    signal.on("abort", removed)
    signal.removeListener("abort", removed)
    signal.removeListener("abort", () => calls.push("never added"))
    expect(signal.aborted).toBe(false)
    signal.abort()
    signal.abort()
    expect(signal.aborted).toBe(true)
    expect(calls).toEqual(["kept"])
  })
})
