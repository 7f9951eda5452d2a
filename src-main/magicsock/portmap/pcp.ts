// PCP client (RFC 6887): ANNOUNCE (gateway presence/epoch) and MAP (UDP port mappings).
import { randomBytes } from 'node:crypto';
import { decodeAddress16, encodeAddress16 } from '../ip6.js';
import { localAddressToward } from './addr.js';
import { PortmapError } from './errors.js';
import { UdpExchanger } from './udp-exchange.js';

/** RFC 6887 §19.1: the server listens on UDP 5351 (shared with NAT-PMP). */
export const PCP_SERVER_PORT = 5351;
/** RFC 6887 §7: version 2 (NAT-PMP is version 0, hence the shared port). */
export const PCP_VERSION = 2;
/** RFC 6887 §19.2: opcodes. */
export const OP_ANNOUNCE = 0;
export const OP_MAP = 1;
/** RFC 6887 §7.1/§7.2: R bit set in responses. */
const R_BIT = 0x80;
/** RFC 6887 §7: common header size and the maximum message size. */
export const PCP_HEADER_LEN = 24;
export const PCP_MAX_MESSAGE = 1100;
/** RFC 6887 §11.1: MAP opcode payload (nonce 12, protocol 1, reserved 3, ports 4, address 16). */
export const PCP_MAP_PAYLOAD_LEN = 36;
export const PCP_NONCE_LEN = 12;
/** IANA protocol number for UDP. */
export const PROTO_UDP = 17;
/**
 * RFC 6887 §8.1.1 suggests IRT = 3 s; we start faster (like NAT-PMP's 250 ms) because the
 * engine probes all three protocols at once and needs an answer within a couple of seconds.
 */
export const PCP_INITIAL_RETRANSMIT_MS = 250;

/** RFC 6887 §7.4 result codes. */
export const PcpResult = {
  SUCCESS: 0,
  UNSUPP_VERSION: 1,
  NOT_AUTHORIZED: 2,
  MALFORMED_REQUEST: 3,
  UNSUPP_OPCODE: 4,
  UNSUPP_OPTION: 5,
  MALFORMED_OPTION: 6,
  NETWORK_FAILURE: 7,
  NO_RESOURCES: 8,
  UNSUPP_PROTOCOL: 9,
  USER_EX_QUOTA: 10,
  CANNOT_PROVIDE_EXTERNAL: 11,
  ADDRESS_MISMATCH: 12,
  EXCESSIVE_REMOTE_PEERS: 13,
} as const;

const RESULT_NAMES = Object.fromEntries(Object.entries(PcpResult).map(([k, v]) => [v, k])) as Record<number, string>;

export interface PcpResponseHeader {
  opcode: number;
  result: number;
  lifetimeSec: number;
  epoch: number;
}

export interface PcpMapResponse extends PcpResponseHeader {
  nonce: Buffer;
  protocol: number;
  internalPort: number;
  externalPort: number;
  externalAddress: string;
}

/** RFC 6887 §7.1: the 24-byte request header. */
export function encodeRequestHeader(opcode: number, lifetimeSec: number, clientAddress: string): Buffer {
  const b = Buffer.alloc(PCP_HEADER_LEN);
  b[0] = PCP_VERSION;
  b[1] = opcode & 0x7f;
  b.writeUInt32BE(lifetimeSec >>> 0, 4);
  encodeAddress16(clientAddress).copy(b, 8);
  return b;
}

export function encodeAnnounceRequest(clientAddress: string): Buffer {
  return encodeRequestHeader(OP_ANNOUNCE, 0, clientAddress);
}

export interface MapRequest {
  clientAddress: string;
  nonce: Buffer;
  internalPort: number;
  suggestedExternalPort: number;
  /** Suggested external address; "0.0.0.0" (as ::ffff:0.0.0.0) means no preference (§11.1). */
  suggestedExternalAddress: string;
  lifetimeSec: number;
}

/** RFC 6887 §11.1: MAP request. lifetime 0 deletes the mapping identified by the nonce (§15). */
export function encodeMapRequest(r: MapRequest): Buffer {
  if (r.nonce.length !== PCP_NONCE_LEN) throw new RangeError('PCP nonce must be 12 bytes');
  const b = Buffer.alloc(PCP_HEADER_LEN + PCP_MAP_PAYLOAD_LEN);
  encodeRequestHeader(OP_MAP, r.lifetimeSec, r.clientAddress).copy(b, 0);
  r.nonce.copy(b, 24);
  b[36] = PROTO_UDP;
  b.writeUInt16BE(r.internalPort, 40);
  b.writeUInt16BE(r.suggestedExternalPort, 42);
  encodeAddress16(r.suggestedExternalAddress).copy(b, 44);
  return b;
}

/**
 * Parses and validates the response header (RFC 6887 §7.2, §8.3). A version-0 reply is a
 * NAT-PMP gateway telling us it does not speak PCP (RFC 6887 §9).
 */
export function parseResponseHeader(msg: Buffer, opcode: number): PcpResponseHeader {
  if (msg.length >= 4 && msg[0] === 0 && msg.readUInt16BE(2) === 1) {
    throw new PortmapError('result', 'gateway speaks NAT-PMP only (PCP version not supported)', PcpResult.UNSUPP_VERSION);
  }
  if (msg.length < PCP_HEADER_LEN) throw new PortmapError('malformed', `PCP reply too short (${msg.length} bytes)`);
  if (msg.length > PCP_MAX_MESSAGE || msg.length % 4 !== 0) throw new PortmapError('malformed', `PCP reply has invalid length ${msg.length}`);
  if (msg[0] !== PCP_VERSION) throw new PortmapError('malformed', `PCP reply has version ${msg[0]}`);
  if (msg[1] !== (R_BIT | opcode)) throw new PortmapError('malformed', `PCP reply has opcode byte ${msg[1]}, want ${R_BIT | opcode}`);
  const result = msg[3] as number;
  const header = { opcode, result, lifetimeSec: msg.readUInt32BE(4), epoch: msg.readUInt32BE(8) };
  if (result !== PcpResult.SUCCESS) {
    throw new PortmapError('result', `PCP result ${result} (${RESULT_NAMES[result] ?? 'unknown'})`, result);
  }
  return header;
}

export function parseMapResponse(msg: Buffer): PcpMapResponse {
  const header = parseResponseHeader(msg, OP_MAP);
  if (msg.length < PCP_HEADER_LEN + PCP_MAP_PAYLOAD_LEN) throw new PortmapError('malformed', `PCP MAP reply truncated (${msg.length} bytes)`);
  return {
    ...header,
    nonce: Buffer.from(msg.subarray(24, 36)),
    protocol: msg[36] as number,
    internalPort: msg.readUInt16BE(40),
    externalPort: msg.readUInt16BE(42),
    externalAddress: decodeAddress16(msg.subarray(44, 60)),
  };
}

export interface PcpClientOptions {
  gateway: string;
  /** Server port; RFC 6887 fixes 5351, tests point it elsewhere. */
  port?: number;
  timeoutMs?: number;
}

export interface PcpMapping {
  nonce: Buffer;
  internalPort: number;
  externalPort: number;
  externalAddress: string;
  lifetimeSec: number;
  epoch: number;
}

export class PcpClient {
  private readonly udp: UdpExchanger;
  private readonly port: number;
  private readonly timeoutMs: number;
  private clientAddress: Promise<string> | undefined;

  constructor(readonly opts: PcpClientOptions) {
    this.udp = new UdpExchanger(opts.gateway);
    this.port = opts.port ?? PCP_SERVER_PORT;
    this.timeoutMs = opts.timeoutMs ?? 2000;
  }

  /** RFC 6887 §8.1: the header carries our own address as the gateway sees it on the LAN. */
  private ourAddress(): Promise<string> {
    this.clientAddress ??= localAddressToward(this.opts.gateway, this.port);
    return this.clientAddress;
  }

  /** RFC 6887 §14.1: ANNOUNCE; success means a PCP server is there. Returns its epoch. */
  async announce(): Promise<PcpResponseHeader> {
    const req = encodeAnnounceRequest(await this.ourAddress());
    return this.udp.exchange(req, this.port, this.timeoutMs, PCP_INITIAL_RETRANSMIT_MS, (m) => parseResponseHeader(m, OP_ANNOUNCE));
  }

  /**
   * Requests (or renews, with the same nonce) a UDP mapping. The nonce identifies the mapping
   * for renewal and deletion (RFC 6887 §11.2); a reply with another nonce is not ours.
   */
  async map(internalPort: number, suggestedExternalPort: number, lifetimeSec: number, nonce: Buffer = randomBytes(PCP_NONCE_LEN)): Promise<PcpMapping> {
    const req = encodeMapRequest({
      clientAddress: await this.ourAddress(),
      nonce,
      internalPort,
      suggestedExternalPort,
      suggestedExternalAddress: '0.0.0.0',
      lifetimeSec,
    });
    return this.udp.exchange(req, this.port, this.timeoutMs, PCP_INITIAL_RETRANSMIT_MS, (m) => {
      const r = parseMapResponse(m);
      if (!r.nonce.equals(nonce) || r.protocol !== PROTO_UDP || r.internalPort !== internalPort) return undefined;
      return {
        nonce,
        internalPort,
        externalPort: r.externalPort,
        externalAddress: r.externalAddress,
        lifetimeSec: r.lifetimeSec,
        epoch: r.epoch,
      };
    });
  }

  /** RFC 6887 §15: delete = MAP with the mapping's nonce and lifetime 0. */
  async unmap(mapping: Pick<PcpMapping, 'nonce' | 'internalPort'>): Promise<void> {
    await this.map(mapping.internalPort, 0, 0, mapping.nonce);
  }

  close(): void {
    this.udp.close();
  }
}
