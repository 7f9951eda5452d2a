/**
 * Batched UDP sends on Linux: sendmmsg(2) on the fd of an existing non-blocking UDP socket, so a
 * batch of datagrams to one destination costs one system call instead of one node:dgram send
 * (JS argument handling, a libuv request and a sendto(2)) per datagram. Runs of equal-sized
 * datagrams (a bulk transfer's full-MTU packets) additionally go out as one UDP GSO message
 * (UDP_SEGMENT, Linux >= 4.18, udp(7)): the kernel walks its UDP/IP output path once per run and
 * splits it into datagrams as late as possible. The datagrams are copied into a native arena the
 * iovecs point at: koffi cannot embed the address of a JS buffer in a struct, and a copy costs
 * far less than the per-datagram work it saves.
 * Struct layouts are those of 64-bit Linux (x86_64, aarch64): <sys/socket.h>, <netinet/in.h>.
 */
import koffi from 'koffi';
import { EAGAIN, EINVAL } from './posix-libc.js';

// struct mmsghdr = struct msghdr (56 bytes) + unsigned msg_len, padded to 8; struct iovec = 16.
const MMSGHDR_SIZE = 64;
const MSG_NAME = 0;
const MSG_NAMELEN = 8;
const MSG_IOV = 16;
const MSG_IOVLEN = 24;
const MSG_CONTROL = 32;
const MSG_CONTROLLEN = 40;
const IOVEC_SIZE = 16;
// struct cmsghdr { size_t cmsg_len; int cmsg_level; int cmsg_type; } then the data, 8-aligned:
// CMSG_LEN(sizeof(uint16_t)) = 18, CMSG_SPACE(sizeof(uint16_t)) = 24.
const CMSG_LEN_U16 = 18;
const CMSG_SPACE_U16 = 24;
/** <netinet/in.h> IPPROTO_UDP (= SOL_UDP) and <linux/udp.h> UDP_SEGMENT. */
const SOL_UDP = 17;
const UDP_SEGMENT = 103;
/** <linux/udp.h> UDP_MAX_SEGMENTS (64 before Linux 6.9; the older, smaller limit is used). */
const UDP_MAX_SEGMENTS = 64;
/** A GSO message is one UDP datagram before segmentation: at most 65535 - 8 (UDP) - 40 (IPv6) bytes. */
const GSO_MAX_BYTES = 65535 - 8 - 40;
/** sizeof(struct sockaddr_in6), the larger of the two address forms. */
const SOCKADDR_IN6_SIZE = 28;
const SOCKADDR_IN_SIZE = 16;
const AF_INET = 2;
const AF_INET6 = 10;
// <asm-generic/errno.h>: the device queue is full; and errors meaning "no UDP GSO here".
const ENOBUFS = 105;
const EIO = 5;
const ENOPROTOOPT = 92;
const EOPNOTSUPP = 95;
const MSG_DONTWAIT = 0x40;

/** Messages per sendmmsg(2) call (the kernel caps vlen at UIO_MAXIOV = 1024). */
const MAX_MSGS = 64;
/** Bytes of datagrams per call; a datagram that does not fit goes through the caller's fallback. */
const ARENA_BYTES = 512 * 1024;

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
  if (addr.length !== 4 && addr.length !== 16) throw new RangeError(`an IP address is 4 or 16 bytes, got ${addr.length}`);
  const v4 = addr.length === 4;
  const sa = new Uint8Array(v4 ? SOCKADDR_IN_SIZE : SOCKADDR_IN6_SIZE);
  const v = new DataView(sa.buffer);
  v.setUint16(0, v4 ? AF_INET : AF_INET6, true);
  v.setUint16(2, port, false);
  sa.set(addr, v4 ? 4 : 8);
  return sa;
}

export interface SendmmsgResult {
  /** Datagrams the kernel accepted, from `first` on. */
  sent: number;
  /** errno of the datagram at `first + sent` when the kernel refused it, else 0. */
  errno: number;
}

export interface SendmmsgOptions {
  /** Coalesce runs of equal-sized datagrams with UDP_SEGMENT (default true; turned off by itself if the kernel refuses). */
  gso?: boolean;
}

export class SendmmsgSender {
  private readonly msgs: unknown;
  private readonly msgView: DataView;
  private readonly arena: unknown;
  private readonly arenaBytes: Uint8Array;
  private readonly arenaBase: bigint;
  private readonly nameView: Uint8Array;
  /** Datagrams carried by each message of the current call. */
  private readonly counts = new Uint16Array(MAX_MSGS);
  private gso: boolean;
  private closed = false;

  private constructor(
    private readonly fd: number,
    private readonly sendmmsg: SendmmsgFn,
    o: SendmmsgOptions,
  ) {
    this.gso = o.gso ?? true;
    // One native block: the mmsghdr array, the iovecs, one cmsg per message, one destination address.
    const iovOff = MAX_MSGS * MMSGHDR_SIZE;
    const cmsgOff = iovOff + MAX_MSGS * IOVEC_SIZE;
    const nameOff = cmsgOff + MAX_MSGS * CMSG_SPACE_U16;
    const headerBytes = nameOff + SOCKADDR_IN6_SIZE;
    this.msgs = koffi.alloc('uint8_t', headerBytes);
    this.arena = koffi.alloc('uint8_t', ARENA_BYTES);
    this.msgView = new DataView(koffi.view(this.msgs, headerBytes));
    this.arenaBytes = new Uint8Array(koffi.view(this.arena, ARENA_BYTES));
    this.arenaBase = koffi.address(this.arena);
    const base = koffi.address(this.msgs);
    this.nameView = new Uint8Array(this.msgView.buffer, nameOff, SOCKADDR_IN6_SIZE);
    for (let i = 0; i < MAX_MSGS; i++) {
      const m = i * MMSGHDR_SIZE;
      this.msgView.setBigUint64(m + MSG_NAME, base + BigInt(nameOff), true);
      this.msgView.setBigUint64(m + MSG_IOV, base + BigInt(iovOff + i * IOVEC_SIZE), true);
      this.msgView.setBigUint64(m + MSG_IOVLEN, 1n, true);
      this.msgView.setBigUint64(m + MSG_CONTROL, base + BigInt(cmsgOff + i * CMSG_SPACE_U16), true);
      const c = cmsgOff + i * CMSG_SPACE_U16;
      this.msgView.setBigUint64(c, BigInt(CMSG_LEN_U16), true);
      this.msgView.setInt32(c + 8, SOL_UDP, true);
      this.msgView.setInt32(c + 12, UDP_SEGMENT, true);
    }
  }

  /** A sender for `fd`, or undefined where sendmmsg(2) is not available (not 64-bit Linux). */
  static create(fd: number, o: SendmmsgOptions = {}): SendmmsgSender | undefined {
    const fn = sendmmsgFn();
    return fn && Number.isInteger(fd) && fd >= 0 ? new SendmmsgSender(fd, fn, o) : undefined;
  }

  /** Whether runs of equal-sized datagrams still go out as UDP GSO messages. */
  get usesGso(): boolean {
    return this.gso;
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
      const msgs = this.fill(datagrams, i, sockaddr.length);
      if (msgs === 0) return { sent: i - first, errno: 0 };
      const r = this.sendmmsg(this.fd, this.msgs, msgs, MSG_DONTWAIT);
      if (r < 0) {
        const e = koffi.errno() || EAGAIN;
        // The first message was refused. If it was a GSO message and the kernel lacks UDP GSO
        // for this socket or route, stop using it and resend without.
        if (this.gso && this.counts[0] > 1 && (e === EIO || e === EINVAL || e === ENOPROTOOPT || e === EOPNOTSUPP)) {
          this.gso = false;
          continue;
        }
        return { sent: i - first, errno: e };
      }
      for (let m = 0; m < r; m++) i += this.counts[m];
      if (r < msgs) return { sent: i - first, errno: 0 };
    }
    return { sent: i - first, errno: 0 };
  }

  /** Lays datagrams[from..] out as messages in the arena; returns the number of messages. */
  private fill(datagrams: readonly Uint8Array[], from: number, namelen: number): number {
    let msgs = 0;
    let used = 0;
    let i = from;
    const cmsgOff = MAX_MSGS * (MMSGHDR_SIZE + IOVEC_SIZE);
    while (msgs < MAX_MSGS && i < datagrams.length) {
      const size = datagrams[i].length;
      if (used + size > ARENA_BYTES) break;
      const start = used;
      let count = 0;
      // A GSO run: equal sizes, within the segment and byte limits.
      do {
        this.arenaBytes.set(datagrams[i], used);
        used += size;
        count++;
        i++;
      } while (
        this.gso &&
        size > 0 &&
        i < datagrams.length &&
        datagrams[i].length === size &&
        count < UDP_MAX_SEGMENTS &&
        (count + 1) * size <= GSO_MAX_BYTES &&
        used + size <= ARENA_BYTES
      );
      const m = msgs * MMSGHDR_SIZE;
      const iov = MAX_MSGS * MMSGHDR_SIZE + msgs * IOVEC_SIZE;
      this.msgView.setBigUint64(iov, this.arenaBase + BigInt(start), true);
      this.msgView.setBigUint64(iov + 8, BigInt(used - start), true);
      this.msgView.setUint32(m + MSG_NAMELEN, namelen, true);
      this.msgView.setBigUint64(m + MSG_CONTROLLEN, count > 1 ? BigInt(CMSG_SPACE_U16) : 0n, true);
      if (count > 1) this.msgView.setUint16(cmsgOff + msgs * CMSG_SPACE_U16 + 16, size, true);
      this.counts[msgs++] = count;
    }
    return msgs;
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
