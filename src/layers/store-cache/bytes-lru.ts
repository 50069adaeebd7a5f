/**
 * Values kept within a budget of bytes, the least recently used dropped first
 * (PROTOCOL.md §22: the store cache holds at most 8 MiB).
 *
 * A use is on the hot path (every cached `get_token`), so it only writes a
 * counter into the entry's slot: reordering a `Map` on every use (delete,
 * then set) cost about 6 % of the server's CPU under load, and its garbage
 * more. The order is worked out only when the budget is passed, which is
 * rare: then the slots are sorted by their last use and the least recently
 * used are dropped until a tenth of the budget is free again, so the sort is
 * paid once for many insertions.
 */
export interface BytesLru<V extends { readonly bytes: number }> {
  /** The value of `key`, without counting as a use. */
  readonly peek: (key: string) => V | undefined
  /** The value of `key`, counted as a use: it becomes the most recently used. */
  readonly use: (key: string) => V | undefined
  /** Stores `value` as the most recently used, then drops the least recently used while over the budget. */
  readonly set: (key: string, value: V) => void
  readonly clear: () => void
  readonly size: () => number
  /** Bytes held. */
  readonly bytes: () => number
}

interface Slot<V> {
  value: V
  /** When it was last used, in uses of this cache (a counter, not a clock). */
  used: number
}

/** Share of the budget freed at once when it is passed. */
const HEADROOM = 0.1

export const makeBytesLru = <V extends { readonly bytes: number }>(maxBytes: number): BytesLru<V> => {
  const slots = new Map<string, Slot<V>>()
  let held = 0
  let uses = 0

  const dropLeastRecentlyUsed = (): void => {
    const target = maxBytes * (1 - HEADROOM)
    const oldestFirst = [...slots].sort((a, b) => a[1].used - b[1].used)
    for (const [key, slot] of oldestFirst) {
      if (held <= target) return
      slots.delete(key)
      held -= slot.value.bytes
    }
  }

  return {
    peek: (key) => slots.get(key)?.value,
    use: (key) => {
      const slot = slots.get(key)
      if (slot === undefined) return undefined
      slot.used = ++uses
      return slot.value
    },
    set: (key, value) => {
      const slot = slots.get(key)
      if (slot === undefined) {
        slots.set(key, { value, used: ++uses })
      } else {
        held -= slot.value.bytes
        slot.value = value
        slot.used = ++uses
      }
      held += value.bytes
      if (held > maxBytes) dropLeastRecentlyUsed()
    },
    clear: () => {
      slots.clear()
      held = 0
    },
    size: () => slots.size,
    bytes: () => held
  }
}
