/**
 * Runs one side of birthday-paradox hole punching inside a netlab namespace. The probe is
 * a sealed disco ping (real size and format); plain UDP echo stands in for the pong (the
 * modules never look at payloads).
 *
 *   hardnat-agent.ts easy STUN_IP STUN_PORT
 *       learns its mapping from STUN ("mapped IP:PORT"), then on stdin
 *       "probe HARD_IP RATE MAX_PROBES MAX_TIME_MS" probes; prints "result {json}", then
 *       sends one fresh datagram to the port found and prints "verified" when it comes back.
 *   hardnat-agent.ts hard EASY_IP EASY_PORT SOCKETS LIFETIME_MS
 *       opens the sockets toward the easy side ("ready"), echoes what arrives, prints
 *       "result {json}" and "open N" when answered; stdin "quit" closes everything.
 *   hardnat-agent.ts both PEER_IP SOCKETS RATE MAX_PROBES MAX_TIME_MS
 *       both-hard probing toward PEER_IP; prints "result {json}" and "open N" at the end.
 */
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { createInterface } from 'node:readline';
import { bindingRequest, parseBindingResponse } from '../../../src-main/derp/stun.js';
import { DiscoType, newTxId, sealDisco } from '../../../src-main/magicsock/disco.js';
import { BirthdayProber, BothHardProber, HardSide } from '../../../src-main/magicsock/hardnat.js';

const [cmd, ...args] = process.argv.slice(2);
const lines = createInterface({ input: process.stdin });
const nextLine = () => new Promise<string>((resolve) => lines.once('line', resolve));
// A real sealed disco ping (what the engine sends), under a throwaway key: the peer only echoes it.
const PROBE = Buffer.from(sealDisco({ type: DiscoType.Ping, txId: newTxId(), nodeKey: randomBytes(32) }, randomBytes(32), randomBytes(32)));

async function easy(stunIp: string, stunPort: number): Promise<void> {
  const sock = createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, r));
  const txId = new Uint8Array(randomBytes(12));
  const mapped = await new Promise<string>((resolve, reject) => {
    const retry = setInterval(() => sock.send(bindingRequest(txId), stunPort, stunIp), 300);
    const fail = setTimeout(() => reject(new Error('no STUN answer')), 5000);
    sock.on('message', function onStun(msg) {
      try {
        const r = parseBindingResponse(msg, txId);
        clearInterval(retry);
        clearTimeout(fail);
        sock.off('message', onStun);
        resolve(`${r.ip}:${r.port}`);
      } catch {
        // not the STUN answer
      }
    });
    sock.send(bindingRequest(txId), stunPort, stunIp);
  });
  console.log(`mapped ${mapped}`);
  const [, hardIp, rate, maxProbes, maxTimeMs] = (await nextLine()).split(' ');
  const prober = new BirthdayProber({
    target: hardIp,
    probe: PROBE,
    send: (d, ip, port) => sock.send(d, port, ip),
    ratePerSec: Number(rate),
    maxProbes: Number(maxProbes),
    maxTimeMs: Number(maxTimeMs),
  });
  const verify = Buffer.from(`verify:${randomBytes(6).toString('hex')}`);
  sock.on('message', (msg, r) => {
    if (r.address !== hardIp) return;
    if (msg.equals(PROBE)) prober.answered(r.port);
    else if (msg.equals(verify)) {
      console.log(`verified ${r.address}:${r.port}`);
      sock.close();
    }
  });
  const result = await prober.result;
  console.log(`result ${JSON.stringify(result)}`);
  if (!result.success) {
    sock.close();
    return;
  }
  sock.send(verify, result.port!, hardIp);
  const giveUp = setTimeout(() => {
    console.log('verify timeout');
    sock.close();
  }, 5000);
  sock.once('close', () => clearTimeout(giveUp));
}

async function hard(easyIp: string, easyPort: number, sockets: number, lifetimeMs: number): Promise<void> {
  const side = await HardSide.open({
    peer: { ip: easyIp, port: easyPort },
    probe: PROBE,
    sockets,
    lifetimeMs,
    onPacket: (data, from, via) => {
      via.send(data, from.ip, from.port);
      if (from.ip === easyIp) side.answered(via);
    },
  });
  console.log(`ready sent=${side.probesSent}`);
  void side.result.then((r) => console.log(`result ${JSON.stringify(r)}\nopen ${side.openSockets}`));
  while ((await nextLine()) !== 'quit');
  side.close();
  console.log(`closed open=${side.openSockets}`);
  lines.close();
}

async function both(peerIp: string, sockets: number, rate: number, maxProbes: number, maxTimeMs: number): Promise<void> {
  const prober = await BothHardProber.open({
    enabled: true,
    target: peerIp,
    probe: PROBE,
    sockets,
    ratePerSec: rate,
    maxProbes,
    maxTimeMs,
    onPacket: (data, from, via) => {
      if (from.ip !== peerIp) return;
      // Echo the peer's probe; our own probe coming back is the answer to one of ours.
      if (!data.equals(PROBE)) via.send(data, from.ip, from.port);
      prober.answered(from.port, via);
    },
  });
  const r = await prober.result;
  console.log(`result ${JSON.stringify(r)}`);
  prober.close();
  console.log(`open ${prober.openSockets}`);
  lines.close();
}

switch (cmd) {
  case 'easy':
    await easy(args[0], Number(args[1]));
    lines.close();
    break;
  case 'hard':
    await hard(args[0], Number(args[1]), Number(args[2]), Number(args[3]));
    break;
  case 'both':
    await both(args[0], Number(args[1]), Number(args[2]), Number(args[3]), Number(args[4]));
    break;
  default:
    console.error('usage: hardnat-agent.ts easy STUN_IP STUN_PORT | hard EASY_IP EASY_PORT SOCKETS LIFETIME_MS | both PEER_IP SOCKETS RATE MAX_PROBES MAX_TIME_MS');
    process.exit(2);
}
