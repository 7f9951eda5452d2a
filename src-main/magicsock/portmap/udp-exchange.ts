// One request/response exchange over UDP with a gateway, with retransmission (NAT-PMP
// RFC 6886 §3.1 and PCP RFC 6887 §8.1.1 both retransmit with doubling intervals).
//
// A datagram that fails parsing does not end the exchange (it may be a late duplicate);
// a result code does. Quirk handled: some routers answer from a different source port than the one we sent to
// (e.g. an ephemeral port). We accept a reply from any port as long as it comes from the
// gateway's IP address; datagrams from any other address are ignored.
import dgram from 'node:dgram';
import { isIPv6 } from 'node:net';
import { PortmapError } from './errors.js';

/** A UDP socket bound to an ephemeral port that runs exchanges one after another. */
export class UdpExchanger {
  private readonly socket: dgram.Socket;
  private readonly ready: Promise<void>;
  private closed = false;
  private inflight: { reject: (e: Error) => void } | undefined;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(readonly gateway: string) {
    this.socket = dgram.createSocket(isIPv6(gateway) ? 'udp6' : 'udp4');
    // Errors (e.g. ICMP port unreachable surfacing as ECONNREFUSED) just mean "no answer".
    this.socket.on('error', () => {});
    this.ready = new Promise((resolve) => this.socket.bind(0, () => resolve()));
  }

  /** Runs one exchange; exchanges are serialised so replies cannot be confused. */
  exchange<T>(request: Buffer, port: number, timeoutMs: number, initialRetransmitMs: number, parse: (msg: Buffer) => T | undefined): Promise<T> {
    const run = () => this.run(request, port, timeoutMs, initialRetransmitMs, parse);
    const p = this.queue.then(run, run);
    this.queue = p.catch(() => {});
    return p;
  }

  private async run<T>(request: Buffer, port: number, timeoutMs: number, initialRetransmitMs: number, parse: (msg: Buffer) => T | undefined): Promise<T> {
    if (this.closed) throw new PortmapError('closed', 'port-mapping client closed');
    await this.ready;
    if (this.closed) throw new PortmapError('closed', 'port-mapping client closed');
    return new Promise<T>((resolve, reject) => {
      let retransmit: NodeJS.Timeout | undefined;
      let interval = initialRetransmitMs;
      const finish = (err: Error | undefined, value?: T) => {
        clearTimeout(deadline);
        clearTimeout(retransmit);
        this.socket.off('message', onMessage);
        this.inflight = undefined;
        if (err) reject(err);
        else resolve(value as T);
      };
      const send = () => {
        this.socket.send(request, port, this.gateway, () => {});
        retransmit = setTimeout(send, interval);
        interval *= 2;
      };
      const onMessage = (msg: Buffer, rinfo: dgram.RemoteInfo) => {
        if (rinfo.address !== this.gateway) return;
        try {
          const value = parse(msg);
          if (value !== undefined) finish(undefined, value);
        } catch (e) {
          // A result code is the gateway's answer: fail at once. A malformed datagram may be a
          // late duplicate or noise, so keep waiting but report it if nothing valid follows.
          if (e instanceof PortmapError && e.code === 'result') finish(e);
          else lastInvalid = e instanceof Error ? e.message : String(e);
        }
      };
      let lastInvalid: string | undefined;
      const deadline = setTimeout(() => {
        const err = lastInvalid
          ? new PortmapError('malformed', `no valid reply from ${this.gateway}:${port} within ${timeoutMs} ms; last invalid reply: ${lastInvalid}`)
          : new PortmapError('timeout', `no reply from ${this.gateway}:${port} within ${timeoutMs} ms`);
        finish(err);
      }, timeoutMs);
      this.inflight = { reject: (e) => finish(e) };
      this.socket.on('message', onMessage);
      send();
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.inflight?.reject(new PortmapError('closed', 'port-mapping client closed'));
    this.ready.then(() => this.socket.close(), () => {});
  }
}
