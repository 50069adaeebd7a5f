"use strict"
/**
 * credproxy's keyring helper: the one process that talks to the OS keyring
 * (`@napi-rs/keyring`: Secret Service on Linux, Keychain on macOS, Credential
 * Manager on Windows), on behalf of `keyring-client.ts` over the IPC channel.
 *
 * It is a process of its own, not a thread, because the library's calls block
 * in native code: an entry's constructor connects to D-Bus synchronously, and
 * a Secret Service that never answers holds that call forever. Only a process
 * can be killed in that state (a stuck worker thread keeps Node from exiting),
 * so the parent puts its deadline on every call and kills this helper when
 * one passes; the next call starts a new one.
 *
 * Messages in: `{ id, op, account?, value?, limit? }`; out: `{ id, ok: true,
 * value? }` or `{ id, ok: false, failure }`, where `failure` is the step that
 * failed, never the library's message: `Unreachable` (no keyring to connect
 * to), `Refused` (a call failed after connecting: a locked collection, a
 * denied prompt, a daemon gone), `TooLarge` (a stored value over
 * MAX_VALUE_BYTES, not sent). First of all it says `{ ready: true }`, or
 * `{ ready: false, failure: "Unsupported" }` when the library does not load
 * on this platform. Nothing is ever written to stdout or stderr.
 */

const MAX_VALUE_BYTES = 64 * 1024
/** Entries kept open: each holds its own D-Bus connection, and opening one costs a connect (~7 ms). */
const ENTRIES_KEPT = 32
/** On Linux, the Secret Service only: the library's fallback, the kernel keyring, forgets everything at logout. */
const ENTRY_OPTIONS = { linux: { store: "secret-service" } }
/** Accounts of credproxy's own entries; anything else under the service is ignored. */
const KINDS = ["token:", "key:"]

const service = process.argv[2]

class Failure {
  constructor(failure) {
    this.failure = failure
  }
}

const load = () => {
  try {
    return require(process.env.CREDPROXY_KEYRING_MODULE)
  } catch {
    return undefined
  }
}

const serve = (keyring) => {
  const entries = new Map()

  /** The open entry of `account` (most recently used kept), connecting when needed. */
  const entryOf = (account) => {
    const kept = entries.get(account)
    if (kept !== undefined) {
      entries.delete(account)
      entries.set(account, kept)
      return kept
    }
    let entry
    try {
      entry = new keyring.AsyncEntry(service, account, ENTRY_OPTIONS)
    } catch {
      throw new Failure("Unreachable")
    }
    entries.set(account, entry)
    if (entries.size > ENTRIES_KEPT) entries.delete(entries.keys().next().value)
    return entry
  }

  /** One call on `account`'s entry; a failed call drops the entry, so the next one connects again. */
  const onEntry = async (account, call) => {
    const entry = entryOf(account)
    try {
      return await call(entry)
    } catch {
      entries.delete(account)
      throw new Failure("Refused")
    }
  }

  const get = async (account) => {
    const value = await onEntry(account, (entry) => entry.getPassword())
    if (typeof value !== "string") return undefined
    if (Buffer.byteLength(value) > MAX_VALUE_BYTES) throw new Failure("TooLarge")
    return value
  }

  /** The accounts of credproxy's entries, at most `limit` of each kind, as the keyring's search lists them. */
  const list = async (limit) => {
    // Opening an entry pins the library's store to the Secret Service before it searches.
    entryOf("probe:list")
    let found
    try {
      found = await keyring.findCredentialsAsync(service)
    } catch {
      throw new Failure("Refused")
    }
    const counts = KINDS.map(() => 0)
    const accounts = []
    for (const { account } of found) {
      const kind = KINDS.findIndex((prefix) => typeof account === "string" && account.startsWith(prefix))
      if (kind < 0 || counts[kind] >= limit) continue
      counts[kind]++
      accounts.push(account)
    }
    return accounts
  }

  /** Can this keyring be used: a write, a read of it and a removal on an entry of this process's own. */
  const probe = async () => {
    const account = `probe:${process.pid}`
    await onEntry(account, (entry) => entry.setPassword('"probe"'))
    const read = await get(account)
    await onEntry(account, (entry) => entry.deleteCredential())
    if (read !== '"probe"') throw new Failure("Refused")
  }

  const operations = {
    get: (message) => get(message.account),
    set: (message) => onEntry(message.account, (entry) => entry.setPassword(message.value)),
    delete: (message) => onEntry(message.account, (entry) => entry.deleteCredential()).then(() => undefined),
    list: (message) => list(message.limit),
    probe
  }

  process.on("message", (message) => {
    const operation = operations[message.op]
    const run = async () =>
      operation === undefined ? Promise.reject(new Failure("Refused")) : operation(message)
    run().then(
      (value) => process.send({ id: message.id, ok: true, value }),
      (error) =>
        process.send({
          id: message.id,
          ok: false,
          failure: error instanceof Failure ? error.failure : "Refused"
        })
    )
  })
}

// The parent gone (its channel closed), there is nothing left to do.
process.on("disconnect", () => process.exit(0))
const keyring = load()
if (keyring === undefined) {
  process.send({ ready: false, failure: "Unsupported" }, () => process.exit(1))
} else {
  serve(keyring)
  process.send({ ready: true })
}
