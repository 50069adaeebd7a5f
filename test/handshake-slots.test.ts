import { describe, expect, it } from "vitest"
import { HandshakeSlots } from "../src/server/handshake-slots.js"

const conn = (name: string, midFrame = false) => ({ name, midFrame })

describe("HandshakeSlots: which connection without a handshake makes room (§22)", () => {
  it("is full at its share and frees a slot on delete, also when deleted twice", () => {
    const slots = new HandshakeSlots<ReturnType<typeof conn>>(2)
    const a = conn("a")
    const b = conn("b")
    slots.add(a, 1)
    expect(slots.full).toBe(false)
    slots.add(b, 2)
    expect(slots.full).toBe(true)
    slots.delete(a)
    slots.delete(a)
    expect(slots.size).toBe(1)
    expect(slots.full).toBe(false)
  })

  it("closes a silent connection of a process that holds several slots before another process's older one", () => {
    const slots = new HandshakeSlots<ReturnType<typeof conn>>(4)
    const client = conn("client")
    slots.add(conn("flood-1"), 100)
    slots.add(client, 200)
    const flood2 = conn("flood-2")
    slots.add(flood2, 100)
    slots.add(conn("flood-3"), 100)
    expect(slots.victim()?.name).toBe("flood-1")
    slots.delete(slots.victim()!)
    expect(slots.victim()).toBe(flood2)
    slots.delete(flood2)
    // The flood's process now holds one slot like the client's: the oldest goes.
    expect(slots.victim()).toBe(client)
  })

  it("spares a connection that has sent part of its handshake while a silent one is left", () => {
    const slots = new HandshakeSlots<ReturnType<typeof conn>>(4)
    const talking = conn("talking", true)
    slots.add(talking, 100)
    slots.add(conn("silent-a"), 100)
    expect(slots.victim()?.name).toBe("silent-a")
    const only = new HandshakeSlots<ReturnType<typeof conn>>(4)
    only.add(talking, 100)
    only.add(conn("also-talking", true), 100)
    expect(only.victim()).toBe(talking)
  })

  it("groups connections whose peer pid is unknown together, oldest first", () => {
    const slots = new HandshakeSlots<ReturnType<typeof conn>>(4)
    slots.add(conn("a"), undefined)
    slots.add(conn("b"), undefined)
    expect(slots.victim()?.name).toBe("a")
    expect(new HandshakeSlots(4).victim()).toBeUndefined()
  })
})
