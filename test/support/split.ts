/** Splits `bytes` at the given cut points (any order, duplicates allowed, taken modulo its length + 1). */
export const splitAt = (bytes: Buffer, cuts: ReadonlyArray<number>): Array<Buffer> => {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b)
  const parts: Array<Buffer> = []
  let start = 0
  for (const point of [...points, bytes.length]) {
    if (point > start) parts.push(bytes.subarray(start, point))
    start = point
  }
  return parts
}
