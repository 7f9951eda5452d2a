/**
 * One mesh link: this relay connects as a client (with its own key and the region's
 * mesh key) to another relay of the region and watches its clients, so packets for
 * them can be handed over in one hop with forward-packet frames.
 */
import { DerpClient } from './client.js';

export interface MeshPeerOptions {
  url: string;
  privateKey: Uint8Array;
  meshKey: string;
  tls?: { ca?: string | Buffer; rejectUnauthorized?: boolean };
  log: (msg: string) => void;
  onPresent: (key: Uint8Array, peer: MeshPeer) => void;
  onGone: (key: Uint8Array, peer: MeshPeer) => void;
  /** The link dropped: every client learned through it is unknown again. */
  onReset: (peer: MeshPeer) => void;
}

export class MeshPeer {
  private readonly client: DerpClient;

  constructor(private readonly o: MeshPeerOptions) {
    this.client = new DerpClient({ url: o.url, privateKey: o.privateKey, meshKey: o.meshKey, tls: o.tls, backoffMaxMs: 5000, log: o.log });
    this.client.onPeerPresent((k) => o.onPresent(k, this));
    this.client.onPeerGone((k) => o.onGone(k, this));
    this.client.onDisconnect(() => o.onReset(this));
    this.client.watchConns();
  }

  get connected(): boolean {
    return this.client.connected;
  }

  /** First attempt; on failure the link keeps retrying in the background. */
  async start(): Promise<void> {
    try {
      await this.client.connect();
    } catch (err) {
      this.o.log(`derp mesh: ${this.o.url}: ${(err as Error).message} (retrying)`);
    }
  }

  forward(src: Uint8Array, dst: Uint8Array, packet: Uint8Array): boolean {
    return this.client.forwardPacket(src, dst, packet);
  }

  close(): Promise<void> {
    return this.client.close();
  }
}
