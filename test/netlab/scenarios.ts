/** Named topologies for `npm run lab -- <scenario>` (and a vocabulary for tests). */
import type { Netlab } from './netlab.js';

export const scenarios: Record<string, { about: string; build: (lab: Netlab) => void }> = {
  'eim-vs-edm': {
    about: 'a host behind an EIM router, a host behind an EDM router, and a public server',
    build(lab) {
      const inet = lab.internet();
      lab.publicHost({ name: 'server', secondaryAddr: true });
      lab.host({ name: 'home', lan: lab.router({ upstream: inet, nat: 'eim', name: 'eim' }) });
      lab.host({ name: 'cafe', lan: lab.router({ upstream: inet, nat: 'edm', name: 'edm' }) });
    },
  },
  'nat-kinds': {
    about: 'one host behind each NAT kind (eim, edm, udp-blocked) and a public host',
    build(lab) {
      const inet = lab.internet();
      lab.publicHost({ name: 'server', secondaryAddr: true });
      for (const nat of ['eim', 'edm', 'udp-blocked'] as const) lab.host({ name: `${nat}-host`, lan: lab.router({ upstream: inet, nat, name: nat }) });
    },
  },
  cgnat: {
    about: 'two homes (EIM) behind one carrier NAT (EIM), and a public server',
    build(lab) {
      lab.publicHost({ name: 'server' });
      const carrier = lab.router({ upstream: lab.internet(), nat: 'eim', carrier: true, name: 'carrier' });
      lab.host({ name: 'a', lan: lab.router({ upstream: carrier, nat: 'eim', name: 'home-a' }) });
      lab.host({ name: 'b', lan: lab.router({ upstream: carrier, nat: 'eim', name: 'home-b' }) });
    },
  },
  portmap: {
    about: 'a home router running miniupnpd with UPnP, NAT-PMP and PCP, and a public server',
    build(lab) {
      lab.publicHost({ name: 'server' });
      lab.host({ name: 'home', lan: lab.router({ upstream: lab.internet(), nat: 'eim', name: 'igd', portmap: { upnp: true, natpmp: true, pcp: true } }) });
    },
  },
  nat64: {
    about: 'an IPv6-only LAN behind NAT64/DNS64, and an IPv4 public server',
    build(lab) {
      lab.publicHost({ name: 'server' });
      lab.host({ name: 'v6only', lan: lab.router({ upstream: lab.internet(), nat: 'eim', nat64: true, name: 'nat64' }) });
    },
  },
  'dual-stack': {
    about: 'two dual-stack homes (IPv4 NAT + routed IPv6 behind a stateful firewall), and a public server',
    build(lab) {
      lab.publicHost({ name: 'server' });
      lab.host({ name: 'a', lan: lab.router({ upstream: lab.internet(), nat: 'eim', ipv6: true, name: 'home-a' }) });
      lab.host({ name: 'b', lan: lab.router({ upstream: lab.internet(), nat: 'eim', ipv6: true, name: 'home-b' }) });
    },
  },
};
