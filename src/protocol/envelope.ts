import { MAX_ID_LENGTH } from "./limits.js"

/**
 * The request id of PROTOCOL.md §5. The server reads `id` first on its own
 * (an unusable id means an answer without id); the rest of a request is
 * decoded by its operation's schema (`requestSchema`).
 */
export const isUsableId = (id: unknown): id is string =>
  typeof id === "string" && id.length > 0 && id.length <= MAX_ID_LENGTH
