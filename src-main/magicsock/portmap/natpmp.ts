// NAT-PMP client (RFC 6886): external address (opcode 0) and UDP mappings (opcode 1).
import { PortmapError } from './errors.js';
import { UdpExchanger } from './udp-exchange.js';

/** RFC 6886 §3: the gateway listens on UDP port 5351. */
export const NATPMP_PORT = 5351;
/** RFC 6886 §3.2: version 0. */
export const NATPMP_VERSION = 0;
/** RFC 6886 §3.2 / §3.3: opcodes; a response carries the request opcode + 128. */
export const OP_EXTERNAL_ADDRESS = 0;
export const OP_MAP_UDP = 1;
export const OP_RESPONSE = 128;
/** RFC 6886 §3.1: first retransmission after 250 ms, then doubling. */
export const NATPMP_INITIAL_RETRANSMIT_MS = 250;

/** RFC 6886 §3.5 result codes. */
export const NatPmpResult = {
  SUCCESS: 0,
  UNSUPPORTED_VERSION: 1,
  NOT_AUTHORIZED: 2,
  NETWORK_FAILURE: 3,
  OUT_OF_RESOURCES: 4,
  UNSUPPORTED_OPCODE: 5,
} as const;

const RESULT_NAMES: Record<number, string> = {
  0: 'Success',
  1: 'Unsupported Version',
  2: 'Not Authorized/Refused',
  3: 'Network Failure',
  4: 'Out of resources',
  5: 'Unsupported opcode',
};

export interface NatPmpExternalAddress {
  epoch: number;
  address: string;
}

export interface NatPmpMapping {
  epoch: number;
  internalPort: number;
  externalPort: number;
  lifetimeSec: number;
}

export function encodeExternalAddressRequest(): Buffer {
  return Buffer.from([NATPMP_VERSION, OP_EXTERNAL_ADDRESS]);
}

/** RFC 6886 §3.3: a 12-byte UDP mapping request. lifetime 0 with external port 0 deletes. */
export function encodeMapRequest(internalPort: number, suggestedExternalPort: number, lifetimeSec: number): Buffer {
  const b = Buffer.alloc(12);
  b[0] = NATPMP_VERSION;
  b[1] = OP_MAP_UDP;
  b.writeUInt16BE(internalPort, 4);
  b.writeUInt16BE(suggestedExternalPort, 6);
  b.writeUInt32BE(lifetimeSec >>> 0, 8);
  return b;
}

/** Checks the common response header (version, opcode, result) and returns the epoch. */
function checkHeader(msg: Buffer, opcode: number, minLength: number): number {
  if (msg.length < 4) throw new PortmapError('malformed', `NAT-PMP reply too short (${msg.length} bytes)`);
  if (msg[0] !== NATPMP_VERSION) throw new PortmapError('malformed', `NAT-PMP reply has version ${msg[0]}`);
  if (msg[1] !== OP_RESPONSE + opcode) throw new PortmapError('malformed', `NAT-PMP reply has opcode ${msg[1]}, want ${OP_RESPONSE + opcode}`);
  const result = msg.readUInt16BE(2);
  if (result !== NatPmpResult.SUCCESS) {
    throw new PortmapError('result', `NAT-PMP result ${result} (${RESULT_NAMES[result] ?? 'unknown'})`, result);
  }
  // RFC 6886 §3.2/§3.3: a success reply is 12 (address) or 16 (mapping) bytes; tolerate extra.
  if (msg.length < minLength) throw new PortmapError('malformed', `NAT-PMP reply truncated (${msg.length} < ${minLength} bytes)`);
  return msg.readUInt32BE(4);
}

export function parseExternalAddressResponse(msg: Buffer): NatPmpExternalAddress {
  const epoch = checkHeader(msg, OP_EXTERNAL_ADDRESS, 12);
  return { epoch, address: `${msg[8]}.${msg[9]}.${msg[10]}.${msg[11]}` };
}

export function parseMapResponse(msg: Buffer): NatPmpMapping {
  const epoch = checkHeader(msg, OP_MAP_UDP, 16);
  return {
    epoch,
    internalPort: msg.readUInt16BE(8),
    externalPort: msg.readUInt16BE(10),
    lifetimeSec: msg.readUInt32BE(12),
  };
}

export interface NatPmpClientOptions {
  gateway: string;
  /** Gateway port; RFC 6886 fixes 5351, tests point it elsewhere. */
  port?: number;
  timeoutMs?: number;
}

export class NatPmpClient {
  private readonly udp: UdpExchanger;
  private readonly port: number;
  private readonly timeoutMs: number;

  constructor(opts: NatPmpClientOptions) {
    this.udp = new UdpExchanger(opts.gateway);
    this.port = opts.port ?? NATPMP_PORT;
    this.timeoutMs = opts.timeoutMs ?? 2000;
  }

  externalAddress(): Promise<NatPmpExternalAddress> {
    return this.udp.exchange(encodeExternalAddressRequest(), this.port, this.timeoutMs, NATPMP_INITIAL_RETRANSMIT_MS, (m) =>
      parseExternalAddressResponse(m),
    );
  }

  /** Requests a UDP mapping; the gateway may grant a different port and lifetime. */
  map(internalPort: number, suggestedExternalPort: number, lifetimeSec: number): Promise<NatPmpMapping> {
    const req = encodeMapRequest(internalPort, suggestedExternalPort, lifetimeSec);
    return this.udp.exchange(req, this.port, this.timeoutMs, NATPMP_INITIAL_RETRANSMIT_MS, (m) => {
      const r = parseMapResponse(m);
      // A reply for some other internal port is a stale answer to an earlier request.
      return r.internalPort === internalPort ? r : undefined;
    });
  }

  /** RFC 6886 §3.4: delete = lifetime 0 and suggested external port 0. */
  async unmap(internalPort: number): Promise<void> {
    await this.map(internalPort, 0, 0);
  }

  close(): void {
    this.udp.close();
  }
}

/**
 * RFC 6886 §3.6: the gateway's epoch must advance with wall time; if it falls behind by more
 * than expected (7/8 of the elapsed time, minus 2 s slack) the gateway lost its state (rebooted)
 * and every mapping must be re-requested.
 */
export function epochWentBackwards(prevEpoch: number, prevAtMs: number, epoch: number, nowMs: number): boolean {
  const elapsedSec = Math.max(0, (nowMs - prevAtMs) / 1000);
  return epoch + 2 < prevEpoch + (elapsedSec * 7) / 8;
}
