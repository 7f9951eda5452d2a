/**
 * The few libc calls the Linux and macOS TUN devices need, bound through koffi. Loaded lazily
 * so that importing this module costs nothing; the main thread and the reader worker each bind
 * their own copy (koffi function objects are per isolate). Constants are Linux values (identical
 * on x86_64 and aarch64) unless marked as differing on macOS.
 */
import koffi from 'koffi';

const darwin = process.platform === 'darwin';
// <fcntl.h>, <sys/poll.h>, <sys/eventfd.h>
export const O_RDWR = 0o2;
export const O_NONBLOCK = 0o4000;
export const O_CLOEXEC = 0o2000000;
export const POLLIN = 0x1;
export const EFD_NONBLOCK = O_NONBLOCK;
export const EFD_CLOEXEC = O_CLOEXEC;
// <asm-generic/errno-base.h>
export const EPERM = 1;
export const ENOENT = 2;
export const EINTR = 4;
export const ENXIO = 6;
/** macOS <sys/errno.h>: EAGAIN is 35. */
export const EAGAIN = darwin ? 35 : 11;
export const EACCES = 13;
export const EBUSY = 16;
export const ENODEV = 19;
export const EINVAL = 22;

/** struct pollfd { int fd; short events; short revents; } */
export const POLLFD_SIZE = 8;

export interface Libc {
  open(path: string, flags: number): number;
  close(fd: number): number;
  /** ioctl(fd, request, void *arg): the one variadic form used here. */
  ioctlPtr(fd: number, request: number, arg: Uint8Array): number;
  /** ioctl(fd, request, unsigned long arg): requests that take a value rather than a pointer. */
  ioctlInt(fd: number, request: number, arg: number): number;
  read(fd: number, buf: Uint8Array, len: number): number;
  write(fd: number, buf: Uint8Array, len: number): number;
  poll(fds: Uint8Array, nfds: number, timeoutMs: number): number;
  /** Linux only (returns -1 elsewhere). */
  eventfd(initval: number, flags: number): number;
  errno(): number;
  strerror(errnum: number): string;
}

let cached: Libc | undefined;

export function libc(): Libc {
  if (cached) return cached;
  const lib = koffi.load(darwin ? '/usr/lib/libSystem.B.dylib' : 'libc.so.6');
  const open = lib.func('int open(const char *path, int flags, ...)');
  const ioctl = lib.func('int ioctl(int fd, unsigned long request, ...)');
  const read = lib.func('long read(int fd, uint8_t *buf, unsigned long count)');
  const write = lib.func('long write(int fd, const uint8_t *buf, unsigned long count)');
  const strerror = lib.func('const char *strerror(int errnum)');
  cached = {
    open: (path, flags) => open(path, flags) as number,
    close: lib.func('int close(int fd)') as (fd: number) => number,
    ioctlPtr: (fd, request, arg) => ioctl(fd, request, 'uint8_t *', arg) as number,
    ioctlInt: (fd, request, arg) => ioctl(fd, request, 'unsigned long', arg) as number,
    read: (fd, buf, len) => Number(read(fd, buf, len)),
    write: (fd, buf, len) => Number(write(fd, buf, len)),
    poll: lib.func('int poll(uint8_t *fds, unsigned long nfds, int timeout)') as Libc['poll'],
    eventfd: darwin ? () => -1 : (lib.func('int eventfd(unsigned int initval, int flags)') as Libc['eventfd']),
    errno: () => koffi.errno(),
    strerror: (e) => strerror(e) as string,
  };
  return cached;
}
