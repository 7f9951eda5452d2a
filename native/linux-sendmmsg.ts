/**
 * Batched UDP sends on Linux: sendmmsg(2) on the fd of an existing non-blocking UDP socket, so a
 * batch of datagrams to one destination costs one system call instead of one node:dgram send
 * (JS argument handling, a libuv request and a sendto(2)) per datagram. The datagrams are copied
 * into a native arena the iovecs point at: koffi cannot embed the address of a JS buffer in a
 * struct, and a copy costs far less than the per-datagram overhead it saves.
 * Struct layouts are those of 64-bit Linux (x86_64, aarch64): <sys/socket.h>, <netinet/in.h>.
 */
import koffi from 'koffi';
import { EAGAIN } from './posix-libc.js';

// struct mmsghdr = struct msghdr (56 bytes) + unsigned msg_len, padded to 8; struct iovec = 16.
const MMSGHDR_SIZE = 64;
const MSG_NAME = 0;
const MSG_NAMELEN = 8;
const MSG_IOV = 16;
const MSG_IOVLEN = 24;
const IOVEC_SIZE = 16;
/** sizeof(struct sockaddr_in6), the larger of the two address forms. */
const SOCKADDR_IN6_SIZE = 28;
const SOCKADDR_IN_SIZE = 16;
const AF_INET = 2;
const AF_INET6 = 10;
// <asm-generic/errno.h>: the socket buffer is full (EAGAIN) or the device queue is (ENOBUFS).
const ENOBUFS = 105;
const MSG_DONTWAIT = 0x40;

/** Datagrams per sendmmsg(2) call (the kernel caps vlen at UIO_MAXIOV = 1024). */
export const SENDMMSG_MAX_BATCH = 64;
/** Bytes of datagrams per call; larger datagrams go through the caller's fallback. */
const ARENA_BYTES = 256 * 1024;

type SendmmsgFn = (fd: number, msgvec: unknown, vlen: number, flags: number) => number;

let bound: SendmmsgFn | null | undefined;

function sendmmsgFn(): SendmmsgFn | undefined {
  if (bound !== undefined) return bound ?? undefined;
  bound = null;
  if (process.platform !== 'linux' || (process.arch !== 'x64' && process.arch !== 'arm64')) return undefined;
  try {
    bound = koffi.load('libc.so.6').func('int sendmmsg(int fd, void *msgvec, unsigned int vlen, int flags)') as SendmmsgFn;
  } catch {
    bound = null;
  }
  return bound ?? undefined;
}

/** A socket address in the kernel's struct sockaddr_in / sockaddr_in6 form. */
export function encodeSockaddr(addr: Uint8Array, port: number): Uint8Array {
  if (addr.length === 4) {
    const sa = new Uint8Array(SOCKADDR_IN_SIZE);
    const v = new DataView(sa.buffer);
    v.setUint16(0, AF_INET, true);
    v.setUint16(2, port, false);
    sa.set(addr, 4);
    return sa;
  }
  if (addr.length !== 16) throw new RangeError(`an IP address is 4 or 16 bytes, got ${addr.length}`);
  const sa = new Uint8Array(SOCKADDR_IN6_SIZE);
  const v = new DataView(sa.buffer);
  v.setUint16(0, AF_INET6, true);
  v.setUint16(2, port, false);
  sa.set(addr, 8);
  return sa;
}

export interface SendmmsgResult {
  /** Datagrams the kernel accepted, from `first` on. */
  sent: number;
  /** errno of the datagram at `first + sent` when the kernel refused it, else 0. */
  errno: number;
}

export class SendmmsgSender {
  private readonly msgs: unknown;
  private readonly msgView: DataView;
  private readonly arena: unknown;
  private readonly arenaBytes: Uint8Array;
  private readonly arenaBase: bigint;
  private readonly nameView: Uint8Array;
  private closed = false;

  private constructor(
    private readonly fd: number,
    private readonly sendmmsg: SendmmsgFn,
  ) {
    // One native block: the mmsghdr array, the iovec array, then one destination address.
    const headerBytes = SENDMMSG_MAX_BATCH * (MMSGHDR_SIZE + IOVEC_SIZE) + SOCKADDR_IN6_SIZE;
    this.msgs = koffi.alloc('uint8_t', headerBytes);
    this.arena = koffi.alloc('uint8_t', ARENA_BYTES);
    this.msgView = new DataView(koffi.view(this.msgs, headerBytes));
    this.arenaBytes = new Uint8Array(koffi.view(this.arena, ARENA_BYTES));
    this.arenaBase = koffi.address(this.arena);
    const msgBase = koffi.address(this.msgs);
    const iovOff = SENDMMSG_MAX_BATCH * MMSGHDR_SIZE;
    const nameOff = iovOff + SENDMMSG_MAX_BATCH * IOVEC_SIZE;
    this.nameView = new Uint8Array(this.msgView.buffer, nameOff, SOCKADDR_IN6_SIZE);
    for (let i = 0; i < SENDMMSG_MAX_BATCH; i++) {
      const m = i * MMSGHDR_SIZE;
      this.msgView.setBigUint64(m + MSG_NAME, msgBase + BigInt(nameOff), true);
      this.msgView.setBigUint64(m + MSG_IOV, msgBase + BigInt(iovOff + i * IOVEC_SIZE), true);
      this.msgView.setBigUint64(m + MSG_IOVLEN, 1n, true);
    }
  }

  /** A sender for `fd`, or undefined where sendmmsg(2) is not available (not 64-bit Linux). */
  static create(fd: number): SendmmsgSender | undefined {
    const fn = sendmmsgFn();
    return fn && Number.isInteger(fd) && fd >= 0 ? new SendmmsgSender(fd, fn) : undefined;
  }

  /**
   * Sends datagrams[first..] to `sockaddr` (see encodeSockaddr) with as few calls as the arena
   * allows. Stops early when the kernel refuses one (a full socket buffer, an unreachable
   * network): the caller decides whether to retry, queue or drop the rest.
   */
  send(datagrams: readonly Uint8Array[], first: number, sockaddr: Uint8Array): SendmmsgResult {
    if (this.closed) return { sent: 0, errno: 0 };
    this.nameView.set(sockaddr);
    let i = first;
    while (i < datagrams.length) {
      let n = 0;
      let used = 0;
      while (n < SENDMMSG_MAX_BATCH && i + n < datagrams.length) {
        const d = datagrams[i + n];
        if (used + d.length > ARENA_BYTES) break;
        this.arenaBytes.set(d, used);
        const iov = SENDMMSG_MAX_BATCH * MMSGHDR_SIZE + n * IOVEC_SIZE;
        this.msgView.setBigUint64(iov, this.arenaBase + BigInt(used), true);
        this.msgView.setBigUint64(iov + 8, BigInt(d.length), true);
        this.msgView.setUint32(n * MMSGHDR_SIZE + MSG_NAMELEN, sockaddr.length, true);
        used += d.length;
        n++;
      }
      if (n === 0) return { sent: i - first, errno: 0 };
      const r = this.sendmmsg(this.fd, this.msgs, n, MSG_DONTWAIT);
      if (r < 0) return { sent: i - first, errno: koffi.errno() || EAGAIN };
      i += r;
      if (r < n) return { sent: i - first, errno: 0 };
    }
    return { sent: i - first, errno: 0 };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    koffi.free(this.msgs);
    koffi.free(this.arena);
  }
}

/** errno values that mean "the queue is full, try later" rather than "this destination fails". */
export function isTransientSendErrno(e: number): boolean {
  return e === EAGAIN || e === ENOBUFS;
}
