/**
 * Who is on the other end of a Unix socket: SO_PEERCRED (Linux, socket(7)) through
 * koffi. Used by the LocalAPI to admit only the owning user (and root). Other OSes
 * rely on the socket file's 0600 mode inside a 0700 directory.
 */
import type { Socket } from 'node:net';
import koffi from 'koffi';

const SOL_SOCKET = 1; // asm-generic/socket.h
const SO_PEERCRED = 17; // asm-generic/socket.h

export interface PeerCred {
  pid: number;
  uid: number;
  gid: number;
}

let getsockopt: ((fd: number, level: number, name: number, out: Buffer, len: Buffer) => number) | undefined;

function loadGetsockopt() {
  if (!getsockopt) {
    const libc = koffi.load('libc.so.6');
    getsockopt = libc.func('int getsockopt(int, int, int, _Out_ uint8_t *optval, _Inout_ uint8_t *optlen)');
  }
  return getsockopt!;
}

/** The peer's credentials, or undefined where the OS or socket cannot tell. */
export function peerCred(socket: Socket): PeerCred | undefined {
  if (process.platform !== 'linux') return undefined;
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) return undefined;
  const out = Buffer.alloc(12); // struct ucred { pid_t pid; uid_t uid; gid_t gid; }
  const len = Buffer.alloc(4);
  len.writeUInt32LE(out.length);
  if (loadGetsockopt()(fd, SOL_SOCKET, SO_PEERCRED, out, len) !== 0) return undefined;
  return { pid: out.readInt32LE(0), uid: out.readUInt32LE(4), gid: out.readUInt32LE(8) };
}
