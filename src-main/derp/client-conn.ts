/**
 * One accepted client connection on the relay: the write side with its bounded
 * queue, the sender's token bucket, and its keepalive timer. The server owns routing.
 */
import type { Duplex } from 'node:stream';
import { encodeFrame, FrameType } from './frames.js';
import { TokenBucket } from './token-bucket.js';

/** How long a closing connection may take to flush its last frame. */
const CLOSE_GRACE_MS = 1000;

export interface ConnLimits {
  /** Frames waiting while the socket is above its high-water mark; beyond this the oldest is dropped. */
  maxQueuedFrames: number;
  /** The same bound in bytes, so a queue of maximal (64 KiB) packets stays small too. */
  maxQueuedBytes: number;
  /** Bytes the socket may buffer before frames wait in the queue. */
  highWaterBytes: number;
  /** Per-client send rate (bytes/s) and burst; 0 disables. */
  bytesPerSecond: number;
  bytesBurst: number;
  keepAliveMs: number;
}

export class ClientConn {
  readonly keyHex: string;
  preferred = false;
  /** Keys (hex) of clients that sent to this one recently; told when it leaves. */
  readonly senders = new Set<string>();
  dropsQueueFull = 0;
  closed = false;
  private queue: Buffer[] = [];
  /** Bytes in `queue`. */
  queuedBytes = 0;
  private readonly bucket: TokenBucket | null;
  private keepAlive: NodeJS.Timeout | null = null;
  private resumeTimer: NodeJS.Timeout | null = null;
  private corked = false;
  onRateLimited: () => void = () => {};

  constructor(
    readonly key: Uint8Array,
    readonly stream: Duplex,
    readonly isMesh: boolean,
    private readonly limits: ConnLimits,
  ) {
    this.keyHex = Buffer.from(key).toString('hex');
    this.bucket = !isMesh && limits.bytesPerSecond > 0 ? new TokenBucket(limits.bytesPerSecond, limits.bytesBurst) : null;
    stream.on('drain', () => this.flush());
    this.scheduleKeepAlive();
  }

  /** Queues a frame for this client; never blocks, never grows beyond the limit. */
  write(frame: Buffer): void {
    if (this.closed) return;
    if (this.queue.length === 0 && this.stream.writableLength < this.limits.highWaterBytes) {
      // Frames written in one tick (one read from a busy sender) leave in one writev.
      if (!this.corked) {
        this.corked = true;
        this.stream.cork();
        process.nextTick(this.uncork);
      }
      this.stream.write(frame);
      return;
    }
    this.queue.push(frame);
    this.queuedBytes += frame.length;
    while (this.queue.length > this.limits.maxQueuedFrames || (this.queuedBytes > this.limits.maxQueuedBytes && this.queue.length > 1)) {
      this.queuedBytes -= this.queue.shift()!.length;
      this.dropsQueueFull++;
    }
  }

  private readonly uncork = (): void => {
    this.corked = false;
    this.stream.uncork();
  };

  private flush(): void {
    while (this.queue.length && this.stream.writableLength < this.limits.highWaterBytes) {
      const f = this.queue.shift()!;
      this.queuedBytes -= f.length;
      this.stream.write(f);
    }
  }

  /** Charges `bytes` to the sender; when in debt, stops reading from it until repaid (TCP pushes back). */
  charge(bytes: number): void {
    if (!this.bucket) return;
    this.bucket.take(bytes);
    const wait = this.bucket.waitMs();
    if (wait > 0 && !this.resumeTimer) {
      this.onRateLimited();
      this.stream.pause();
      this.resumeTimer = setTimeout(() => {
        this.resumeTimer = null;
        if (!this.closed) this.stream.resume();
      }, wait);
    }
  }

  private scheduleKeepAlive(): void {
    // Jitter (±10%) spreads keepalives of clients that connected together.
    const ms = this.limits.keepAliveMs * (0.9 + Math.random() * 0.2);
    this.keepAlive = setTimeout(() => {
      this.write(encodeFrame(FrameType.KeepAlive));
      this.scheduleKeepAlive();
    }, ms);
    this.keepAlive.unref();
  }

  close(): void {
    if (this.stop()) this.stream.destroy();
  }

  /** Sends `frame` as the last one (e.g. a health frame saying why), then closes. */
  closeWith(frame: Buffer): void {
    if (!this.stop()) return;
    this.stream.end(frame);
    setTimeout(() => this.stream.destroy(), CLOSE_GRACE_MS).unref();
  }

  private stop(): boolean {
    if (this.closed) return false;
    this.closed = true;
    if (this.keepAlive) clearTimeout(this.keepAlive);
    if (this.resumeTimer) clearTimeout(this.resumeTimer);
    this.queue = [];
    this.queuedBytes = 0;
    return true;
  }
}
