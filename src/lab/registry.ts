// Every `tvs lab` experiment, one line each: its name, the seed it reproduces, what it shows, and
// how to load it (lazily, so `tvs lab --list` loads none). Add an experiment by adding its line;
// names must be unique (checked when the registry is built).

import type { LabEntry } from "./lab-experiment.ts";

const forwarding = () => import("./experiments/forwarding.ts");

// biome-ignore format: one line per experiment
export const LAB_EXPERIMENTS: readonly LabEntry[] = registry([
  { name: "nat", seed: "seed 001", summary: "NAT (-m): replies return through the director; rr, wrr 2:1, port mapping", load: () => forwarding().then((m) => m.nat) },
  { name: "dr", seed: "seeds 000+001", summary: "DR (-g): MAC rewrite, VIP on the real servers' lo, replies bypass the director", load: () => forwarding().then((m) => m.dr) },
  { name: "tun", seed: "seed 003", summary: "TUN (-i): IPIP to the real servers, replies bypass the director", load: () => forwarding().then((m) => m.tun) },
  { name: "fullnat", seed: "seed 004", summary: "FULLNAT: both addresses rewritten, real servers see the director's local address", load: () => forwarding().then((m) => m.fullnat) },
  { name: "persistence", seed: "seed 003", summary: "-s wlc -p 600: one client sticks to one real server, others spread, the template in -c and --persistent-conn, -d moves the client", load: () => import("./experiments/persistence.ts").then((m) => m.persistence) },
  { name: "keepalived", seed: "seeds 002+003", summary: "seed 002's keepalived.conf on two tvsd DR directors (or --peer keepalived): the master is killed mid curl loop, the backup takes over; takeover time, failed requests", load: () => import("./experiments/keepalived.ts").then((m) => m.keepalived) },
  { name: "ldirectord", seed: "seed 003", summary: "ldirectord.cf (quiescent=no, negotiate, fallback) on DR: a stopped web server leaves -L -n in checkinterval, returns, fallback when all are down", load: () => import("./experiments/ldirectord.ts").then((m) => m.ldirectord) },
  { name: "pitfalls", seed: "seed 001", summary: "the seed's failed attempts: NAT without a route back (no answer), DR with the VIP = the director's address (no ARP reply); diagnosis, then the fix", load: () => import("./experiments/pitfalls.ts").then((m) => m.pitfalls) },
  { name: "sync", seed: "seed 002", summary: "two tvsd with VRRP and lvs_sync_daemon (DR, NAT): the master is killed during a download and with connections held open; takeover, resets (target 0), checksum, persistence", load: () => import("./experiments/sync.ts").then((m) => m.sync) },
  { name: "compare", seed: "seed 004", summary: "NAT, DR, TUN and FULLNAT in turn; the seed's comparison table measured: client address at the RS, reply path, port mapping, RS needs, throughput, director CPU", load: () => import("./experiments/compare.ts").then((m) => m.compare) },
  { name: "synflood", seed: "seed 001", summary: "a spoofed-source SYN flood (hping3 --rand-source) at a NAT, FULLNAT or DR service with IPVS's defences or the SYN proxy (--sysctl synproxy=1), on one or more workers, during a download and a new client every 10 ms: table size, tvsd memory, legitimate success rate, throughput before/during", load: () => import("./experiments/synflood.ts").then((m) => m.synflood) },
  { name: "ecmp", seed: "seed 002", summary: "three tvsd directors (DR, mh, --sloppy-tcp) announce a VIP over BGP through BIRD to a multipath router: spread, a director killed and joining again; route withdrawal time and broken held connections, mh against wlc; --forward fullnat: a sync mesh, with and without sync", load: () => import("./experiments/ecmp.ts").then((m) => m.ecmp) },
]);

function registry(entries: LabEntry[]): readonly LabEntry[] {
  const seen = new Set<string>();
  for (const e of entries) {
    if (seen.has(e.name)) throw new Error(`Lab experiment "${e.name}" is registered twice`);
    seen.add(e.name);
  }
  return Object.freeze(entries);
}

export function findExperiment(name: string): LabEntry | undefined {
  return LAB_EXPERIMENTS.find((e) => e.name === name);
}
