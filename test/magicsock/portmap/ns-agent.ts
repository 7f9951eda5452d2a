// Runs inside a network namespace (spawned with `ip netns exec`) and drives our port-mapping
// clients there on behalf of a test in the root namespace. Protocol: one JSON request per
// stdin line ({ id, op, ... }), one JSON reply per stdout line ({ id, ok, value | error }).
import dgram from 'node:dgram';
import { createInterface } from 'node:readline';
import { NatPmpClient } from '../../../src-main/magicsock/portmap/natpmp.js';
import { PcpClient } from '../../../src-main/magicsock/portmap/pcp.js';
import { Portmapper, type PortmapperOptions } from '../../../src-main/magicsock/portmap/portmapper.js';
import { UpnpClient } from '../../../src-main/magicsock/portmap/upnp.js';

type Closable = { close(): unknown };
const objects = new Map<string, Closable & Record<string, unknown>>();
const sockets = new Map<number, { socket: dgram.Socket; received: string[] }>();
const events: unknown[] = [];

const revive = (_k: string, v: unknown) =>
  v && typeof v === 'object' && (v as { type?: string }).type === 'Buffer' ? Buffer.from((v as { data: number[] }).data) : v;

const factories: Record<string, (opts: never) => Closable & Record<string, unknown>> = {
  natpmp: (o) => new NatPmpClient(o) as never,
  pcp: (o) => new PcpClient(o) as never,
  upnp: (o) => new UpnpClient(o) as never,
  portmapper: (o: PortmapperOptions) => new Portmapper({ ...o, onChange: (m) => void events.push(m) }) as never,
};

async function handle(req: Record<string, unknown>): Promise<unknown> {
  switch (req.op) {
    case 'new': {
      const make = factories[req.kind as string];
      if (!make) throw new Error(`unknown kind ${String(req.kind)}`);
      objects.set(req.name as string, make(req.opts as never));
      return null;
    }
    case 'call': {
      const obj = objects.get(req.name as string);
      const fn = obj?.[req.method as string];
      if (typeof fn !== 'function') throw new Error(`no method ${String(req.method)}`);
      return await fn.apply(obj, (req.args as unknown[]) ?? []);
    }
    case 'events':
      return events;
    case 'udp-open': {
      const socket = dgram.createSocket('udp4');
      const received: string[] = [];
      socket.on('message', (m, r) => received.push(`${r.address}:${r.port} ${m.toString()}`));
      await new Promise<void>((res) => socket.bind(req.port as number, () => res()));
      sockets.set(socket.address().port, { socket, received });
      return socket.address().port;
    }
    case 'udp-send': {
      const entry = sockets.get(req.from as number);
      if (!entry) throw new Error('no such socket');
      await new Promise<void>((res, rej) => entry.socket.send(String(req.data), req.port as number, req.host as string, (e) => (e ? rej(e) : res())));
      return null;
    }
    case 'udp-received':
      return sockets.get(req.port as number)?.received ?? [];
    case 'exit':
      for (const o of objects.values()) await o.close();
      for (const s of sockets.values()) s.socket.close();
      rl.close();
      return null;
    default:
      throw new Error(`unknown op ${String(req.op)}`);
  }
}

const rl = createInterface({ input: process.stdin });
rl.on('line', (line) => {
  const req = JSON.parse(line, revive) as Record<string, unknown>;
  handle(req).then(
    (value) => process.stdout.write(JSON.stringify({ id: req.id, ok: true, value: value ?? null }) + '\n'),
    (e: Error & { code?: string; resultCode?: number }) =>
      process.stdout.write(JSON.stringify({ id: req.id, ok: false, error: { message: e.message, code: e.code, resultCode: e.resultCode } }) + '\n'),
  );
});
