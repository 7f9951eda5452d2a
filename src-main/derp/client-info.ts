/**
 * The JSON sealed inside client-info and server-info frames. Parsed defensively: the
 * bytes come from the network, so every field is type-checked and unknown ones ignored.
 */
import { DerpProtocolError } from './errors.js';

export interface ClientInfo {
  version: number;
  meshKey?: string;
  canAckPings?: boolean;
  /** Hex of the challenge from this connection's server-key frame. */
  challenge?: string;
}

export interface ServerInfo {
  version: number;
  tokenBucketBytesPerSecond?: number;
  tokenBucketBytesBurst?: number;
}

function parseObject(bytes: Uint8Array, what: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    throw new DerpProtocolError(`${what}: not UTF-8 JSON`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new DerpProtocolError(`${what}: not a JSON object`);
  return v as Record<string, unknown>;
}

function num(o: Record<string, unknown>, k: string, what: string): number | undefined {
  const v = o[k];
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new DerpProtocolError(`${what}: ${k} must be a non-negative number`);
  return v;
}

export function parseClientInfoJson(bytes: Uint8Array): ClientInfo {
  const o = parseObject(bytes, 'client info');
  const version = num(o, 'version', 'client info') ?? 0;
  const info: ClientInfo = { version };
  if (o.meshKey !== undefined && o.meshKey !== '') {
    if (typeof o.meshKey !== 'string' || o.meshKey.length > 256) throw new DerpProtocolError('client info: meshKey must be a short string');
    info.meshKey = o.meshKey;
  }
  if (o.canAckPings !== undefined) info.canAckPings = o.canAckPings === true;
  if (o.challenge !== undefined) {
    if (typeof o.challenge !== 'string' || !/^[0-9a-f]{1,128}$/.test(o.challenge)) throw new DerpProtocolError('client info: challenge must be lowercase hex');
    info.challenge = o.challenge;
  }
  return info;
}

export function parseServerInfoJson(bytes: Uint8Array): ServerInfo {
  const o = parseObject(bytes, 'server info');
  return {
    version: num(o, 'version', 'server info') ?? 0,
    tokenBucketBytesPerSecond: num(o, 'tokenBucketBytesPerSecond', 'server info'),
    tokenBucketBytesBurst: num(o, 'tokenBucketBytesBurst', 'server info'),
  };
}

export function encodeJson(v: ClientInfo | ServerInfo): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(v));
}
