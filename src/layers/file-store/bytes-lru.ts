/**
 * Values kept within a budget of bytes, the least recently used dropped first
 * (PROTOCOL.md §22: the store cache holds at most 8 MiB). A `Map` keeps its
 * keys in insertion order, so every use moves its key to the end, and the
 * first key is always the least recently used one.
 */
export interface BytesLru<V extends { readonly bytes: number }> {
  /** The value of `key`, without counting as a use. */
  readonly peek: (key: string) => V | undefined
  /** Records a use of `key` (which holds `value`): it becomes the most recently used. */
  readonly touch: (key: string, value: V) => void
  /** Stores `value` as the most recently used, then drops the least recently used until the budget holds. */
  readonly set: (key: string, value: V) => void
  readonly clear: () => void
  readonly size: () => number
  /** Bytes held. */
  readonly bytes: () => number
}

export const makeBytesLru = <V extends { readonly bytes: number }>(maxBytes: number): BytesLru<V> => {
  const entries = new Map<string, V>()
  let held = 0

  const touch = (key: string, value: V): void => {
    entries.delete(key)
    entries.set(key, value)
  }

  const dropLeastRecentlyUsed = (): void => {
    for (const [key, value] of entries) {
      if (held <= maxBytes) return
      entries.delete(key)
      held -= value.bytes
    }
  }

  const set = (key: string, value: V): void => {
    const previous = entries.get(key)
    if (previous !== undefined) held -= previous.bytes
    touch(key, value)
    held += value.bytes
    if (held > maxBytes) dropLeastRecentlyUsed()
  }

  return {
    peek: (key) => entries.get(key),
    touch,
    set,
    clear: () => {
      entries.clear()
      held = 0
    },
    size: () => entries.size,
    bytes: () => held
  }
}
