/**
 * Waits in real time, polling every few milliseconds, until `condition` holds;
 * rejects after `limitMs` (a generous bound: correctness never depends on it).
 */
export const until = async (condition: () => boolean, limitMs = 5_000, what = "condition"): Promise<void> => {
  const deadline = Date.now() + limitMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}
