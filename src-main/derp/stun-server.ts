/**
 * A STUN server for NAT discovery: answers RFC 5389 Binding requests with the
 * source address it saw (XOR-MAPPED-ADDRESS, §15.2), over IPv4 and IPv6. Anything
 * that is not a well-formed Binding request is dropped silently (§7.3).
 */
import dgram from 'node:dgram';
import { isIPv4 } from 'node:net';
import {
  ATTR_MAPPED_ADDRESS, ATTR_SOFTWARE, ATTR_XOR_MAPPED_ADDRESS, BINDING_REQUEST, BINDING_SUCCESS, encodeMappedAddress,
  encodeStun, encodeXorMappedAddress, parseStun,
} from './stun.js';

/** RFC 5389 §18.4: the default STUN port. */
export const STUN_PORT = 3478;
const SOFTWARE = new TextEncoder().encode('pierce');

export class StunServer {
  answered = 0;
  dropped = 0;

  private constructor(private readonly socket: dgram.Socket) {
    socket.on('message', (msg, rinfo) => this.onMessage(msg, rinfo));
    socket.on('error', () => {});
  }

  /** Binds `host` (default: all IPv6 and IPv4 addresses) on `port` (0 = any free port). */
  static async listen(o: { port: number; host?: string }): Promise<StunServer> {
    const v4 = o.host !== undefined && isIPv4(o.host);
    const socket = dgram.createSocket({ type: v4 ? 'udp4' : 'udp6', ipv6Only: false });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(o.port, o.host ?? '::', () => {
        socket.off('error', reject);
        resolve();
      });
    });
    return new StunServer(socket);
  }

  get port(): number {
    return this.socket.address().port;
  }

  private onMessage(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    let req;
    try {
      req = parseStun(msg);
    } catch {
      this.dropped++;
      return;
    }
    if (req.type !== BINDING_REQUEST) {
      this.dropped++;
      return;
    }
    // A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d; answer with the IPv4 address.
    const ip = rinfo.address.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, '');
    const res = encodeStun(BINDING_SUCCESS, req.txId, [
      { type: ATTR_XOR_MAPPED_ADDRESS, value: encodeXorMappedAddress(ip, rinfo.port, req.txId) },
      { type: ATTR_MAPPED_ADDRESS, value: encodeMappedAddress(ip, rinfo.port) },
      { type: ATTR_SOFTWARE, value: SOFTWARE },
    ]);
    this.answered++;
    this.socket.send(res, rinfo.port, rinfo.address);
  }

  close(): void {
    try {
      this.socket.close();
    } catch {
      // already closed
    }
  }
}
