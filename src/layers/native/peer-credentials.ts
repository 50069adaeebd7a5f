/**
 * Who is at the other end of an accepted Unix socket, asked of the kernel
 * through koffi (PROTOCOL.md §9). koffi is required on first use, never at
 * import, so this module loads on every platform and costs nothing where peer
 * credentials are not checked.
 *
 * Failures are values, not exceptions: the caller fails closed on them, and a
 * `throw` would be too easy to let escape into the accept path.
 */
import { createRequire } from "node:module"
import type * as net from "node:net"

type Koffi = typeof import("koffi")
type KoffiFunction = ReturnType<ReturnType<Koffi["load"]>["func"]>

/** The kernel's answer; `pid` is absent when the platform could not say (macOS before 10.8). */
export interface PeerCredentials {
  readonly uid: number
  readonly gid: number
  readonly pid?: number
}

export type PeerCredResult =
  | ({ readonly _tag: "Ok" } & PeerCredentials)
  | { readonly _tag: "Failed"; readonly message: string; readonly errno?: number }

/**
 * The file descriptor behind an accepted `net.Socket`. Node does not expose it
 * publicly; the libuv handle (`Pipe` for Unix sockets) has a read-only `fd`
 * that is ≥ 0 on Unix and -1 on Windows. This is the only place that reaches
 * into `_handle`, so a Node change breaks here, and `undefined` makes the
 * caller fail closed rather than guess.
 */
export const socketFd = (socket: net.Socket): number | undefined => {
  const fd = (socket as unknown as SocketWithHandle)._handle?.fd
  return typeof fd === "number" && Number.isInteger(fd) && fd >= 0 ? fd : undefined
}

/** The narrow shape of Node's private handle that `socketFd` relies on. */
interface SocketWithHandle {
  readonly _handle?: { readonly fd?: unknown } | null
}

// Socket option constants, from <sys/socket.h> / <sys/un.h>.
const SOL_SOCKET_LINUX = 1
const SO_PEERCRED_LINUX = 17
const SOL_LOCAL_DARWIN = 0
const LOCAL_PEERPID_DARWIN = 2

/** struct ucred { pid_t pid; uid_t uid; gid_t gid; } on Linux: three 32-bit fields. */
const UCRED_SIZE = 12

interface LinuxNative {
  readonly koffi: Koffi
  readonly getsockopt: KoffiFunction
}

interface DarwinNative {
  readonly koffi: Koffi
  readonly getsockopt: KoffiFunction
  readonly getpeereid: KoffiFunction
}

type Loaded<A> =
  | { readonly _tag: "Loaded"; readonly native: A }
  | { readonly _tag: "Unavailable"; readonly message: string }

const errorMessage = (error: unknown): string => (error instanceof Error ? error.message : String(error))

const requireKoffi = (): Koffi => createRequire(import.meta.url)("koffi") as Koffi

/**
 * Opens the first library that loads. `null` is the process's own global
 * symbol scope (dlopen(NULL)): Node links libc, so `getsockopt` is there even
 * where the libc file name is not one we know.
 */
const openFirst = (koffi: Koffi, names: ReadonlyArray<string | null>): ReturnType<Koffi["load"]> => {
  const failures: Array<string> = []
  for (const name of names) {
    try {
      return koffi.load(name)
    } catch (error) {
      failures.push(`${name ?? "<process>"}: ${errorMessage(error)}`)
    }
  }
  throw new Error(`no C library could be loaded (${failures.join("; ")})`)
}

/** musl names its libc after the architecture (Alpine: /lib/libc.musl-x86_64.so.1). */
const muslArch: Partial<Record<string, string>> = {
  x64: "x86_64",
  arm64: "aarch64",
  arm: "armhf",
  ia32: "x86",
  riscv64: "riscv64",
  ppc64: "ppc64le",
  s390x: "s390x"
}

const linuxLibcNames = (): ReadonlyArray<string | null> => {
  const arch = muslArch[process.arch]
  return ["libc.so.6", ...(arch === undefined ? [] : [`libc.musl-${arch}.so.1`]), null]
}

/** Loads once, on first call; a failure is remembered too, so it is not retried per connection. */
const once = <A>(load: () => A): (() => Loaded<A>) => {
  let cached: Loaded<A> | undefined
  return () => {
    if (cached === undefined) {
      try {
        cached = { _tag: "Loaded", native: load() }
      } catch (error) {
        cached = { _tag: "Unavailable", message: errorMessage(error) }
      }
    }
    return cached
  }
}

const loadLinux = once((): LinuxNative => {
  const koffi = requireKoffi()
  const libc = openFirst(koffi, linuxLibcNames())
  const ucred = koffi.struct({ pid: "int32_t", uid: "uint32_t", gid: "uint32_t" })
  const getsockopt = libc.func("getsockopt", "int", [
    "int",
    "int",
    "int",
    koffi.pointer(ucred),
    koffi.pointer("uint32_t")
  ])
  return { koffi, getsockopt }
})

const loadDarwin = once((): DarwinNative => {
  const koffi = requireKoffi()
  const libSystem = openFirst(koffi, ["/usr/lib/libSystem.B.dylib", null])
  // uid_t, gid_t, pid_t and socklen_t are all 32 bits on macOS.
  const getpeereid = libSystem.func("int getpeereid(int fd, uint32_t *uid, uint32_t *gid)")
  const getsockopt = libSystem.func(
    "int getsockopt(int fd, int level, int name, int32_t *value, uint32_t *len)"
  )
  return { koffi, getsockopt, getpeereid }
})

/**
 * Loads the native functions for this platform now, so a broken install shows
 * at start-up instead of as a rejected first connection. `undefined` = ready.
 */
export const preload = (platform: NodeJS.Platform = process.platform): string | undefined => {
  const loaded = platform === "linux" ? loadLinux() : platform === "darwin" ? loadDarwin() : undefined
  if (loaded === undefined) return `peer credentials are not supported on ${platform}`
  return loaded._tag === "Unavailable" ? loaded.message : undefined
}

// Scratch memory for the out-parameters, reused by every call: the calls are
// synchronous and nothing keeps a pointer to it, so sharing is safe and spares
// an allocation per connection. koffi passes a typed array's own memory to C
// (no copy, no conversion for native-endian pointee types), and typed views
// read it in the platform's byte order, which is the C ABI's. This is about
// three times faster than letting koffi marshal a `_Out_ struct *` into an object.
const scratch = new ArrayBuffer(16)
const scratchBytes = new Uint8Array(scratch, 0, UCRED_SIZE)
const scratchI32 = new Int32Array(scratch)
const scratchU32 = new Uint32Array(scratch)
const lenBuffer = new Uint32Array(1)
const darwinUid = new Uint32Array(1)
const darwinGid = new Uint32Array(1)
const darwinPid = new Int32Array(1)

/** (uid_t)-1 is no one's uid: preset so a call that wrote nothing cannot leave an earlier peer's uid behind. */
const NO_UID = 0xffffffff

const failed = (koffi: Koffi, call: string): PeerCredResult => {
  const errno = koffi.errno()
  return { _tag: "Failed", message: `${call} failed (errno ${errno})`, errno }
}

/** SO_PEERCRED: uid, gid and pid of the process that called connect(), fixed at that moment. */
export const readPeerCredLinux = (fd: number): PeerCredResult => {
  const loaded = loadLinux()
  if (loaded._tag === "Unavailable") return { _tag: "Failed", message: loaded.message }
  const { koffi, getsockopt } = loaded.native
  scratchU32[1] = NO_UID
  lenBuffer[0] = UCRED_SIZE
  if (getsockopt(fd, SOL_SOCKET_LINUX, SO_PEERCRED_LINUX, scratchBytes, lenBuffer) !== 0) {
    return failed(koffi, "getsockopt(SO_PEERCRED)")
  }
  if (lenBuffer[0] !== UCRED_SIZE) {
    return { _tag: "Failed", message: `getsockopt(SO_PEERCRED) returned ${lenBuffer[0]} bytes` }
  }
  return { _tag: "Ok", pid: scratchI32[0]!, uid: scratchU32[1]!, gid: scratchU32[2]! }
}

/**
 * getpeereid for the uid and gid; LOCAL_PEERPID for the pid, which is only
 * logged, so its failure leaves `pid` out instead of failing the check.
 */
export const readPeerCredDarwin = (fd: number): PeerCredResult => {
  const loaded = loadDarwin()
  if (loaded._tag === "Unavailable") return { _tag: "Failed", message: loaded.message }
  const { koffi, getpeereid, getsockopt } = loaded.native
  darwinUid[0] = NO_UID
  if (getpeereid(fd, darwinUid, darwinGid) !== 0) return failed(koffi, "getpeereid")
  const uid = darwinUid[0]!
  const gid = darwinGid[0]!
  lenBuffer[0] = 4
  if (
    getsockopt(fd, SOL_LOCAL_DARWIN, LOCAL_PEERPID_DARWIN, darwinPid, lenBuffer) !== 0 ||
    lenBuffer[0] !== 4
  ) {
    return { _tag: "Ok", uid, gid }
  }
  return { _tag: "Ok", uid, gid, pid: darwinPid[0]! }
}

/** The kernel call that reads a peer's credentials on `platform`; `undefined` where there is none. */
export const peerCredReader = (
  platform: NodeJS.Platform = process.platform
): ((fd: number) => PeerCredResult) | undefined =>
  platform === "linux" ? readPeerCredLinux : platform === "darwin" ? readPeerCredDarwin : undefined
