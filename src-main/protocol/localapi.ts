/**
 * The LocalAPI: the one typed interface every UI (CLI, desktop app, browser) uses to
 * talk to a running node. Transport: HTTP/1.1 over a Unix socket that only the owning
 * user can open (socket mode 0600 inside a 0700 directory). These types are the
 * schema of `pierce status --json`: additive changes only.
 */

export const LOCALAPI_VERSION = 1;

export type PeerPath =
  | { kind: 'direct'; endpoint: string; latencyMs: number | null }
  | { kind: 'relay'; region: number; regionCode?: string; latencyMs: number | null }
  | { kind: 'none' };

export interface SelfStatus {
  name: string;
  nodeKey: string;
  user?: string;
  tags: string[];
  addresses: string[];
  online: boolean;
  keyExpiry?: string;
  homeRegion?: number;
}

export interface PeerStatus {
  name: string;
  nodeKey: string;
  user?: string;
  tags: string[];
  addresses: string[];
  online: boolean;
  os?: string;
  path: PeerPath;
  /** ISO time of the last WireGuard handshake, absent if none yet. */
  lastHandshake?: string;
  rxBytes: number;
  txBytes: number;
}

export type BackendState = 'NoState' | 'NeedsLogin' | 'Starting' | 'Running' | 'Stopped';

export interface Status {
  version: number;
  backendState: BackendState;
  /** Set while an interactive (SSO) login waits for the browser. */
  authUrl?: string;
  controlUrl?: string;
  self?: SelfStatus;
  peers: PeerStatus[];
  /** Packets dropped by the packet filter since start. */
  filterDrops: number;
  health: string[];
}

export interface UpRequest {
  controlUrl: string;
  authKey?: string;
  advertiseTags?: string[];
  hostname?: string;
}

export interface UpResponse {
  backendState: BackendState;
  authUrl?: string;
}

export interface PingStep {
  /** "relay" when the pong came back through a relay, "direct" when over UDP. */
  via: 'relay' | 'direct';
  region?: number;
  endpoint?: string;
  latencyMs: number;
}

export interface PingResponse {
  peer: string;
  steps: PingStep[];
  error?: string;
}

export interface LocalApiError {
  error: string;
}
