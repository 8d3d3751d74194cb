// Differential scheduling suite: the same service, the same real servers (added in the same order)
// and the same client traffic in the kernel and in tvs's core schedulers; the sequence of chosen
// real servers must be equal for every deterministic scheduler (rr wrr lc wlc sed nq dh sh mh lblc
// lblcr fo ovf), with many client addresses for sh and mh and many VIPs for dh (the hash-exactness
// check: the kernel's hash_32 / hsiphash against ours).
//
// Kernel side (cheap but faithful): in the guest, clients are local sockets bound to distinct
// source addresses on eth0; each sends one UDP datagram (busybox traceroute, one probe to port
// 33435) to the VIP; IPVS schedules it at LOCAL_OUT and keeps a connection entry; the choice is read
// back from `ipvsadm -L -n -c` (source address → destination). Clients run one after another, so
// the order is the scheduling order. UDP connections count as InActConn, as in the kernel.
// tvs side: the same service in a core ServiceTable; each flow is scheduled and, as the kernel does
// for a new UDP connection, bound to its destination as inactive.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { ManualClock } from "../../src/core/clock.ts";
import { destSpec } from "../../src/core/dest.ts";
import { createDefaultRegistry } from "../../src/core/sched/all.ts";
import { seededRandom } from "../../src/core/sched/harness.ts";
import type { ServiceKey } from "../../src/core/service.ts";
import { serviceOptions } from "../../src/core/service.ts";
import { ServiceTable } from "../../src/core/service-table.ts";
import { GUEST_RESET, guestSetupScript } from "./guest-env.ts";
import { KernelVm } from "./vm.ts";

const PORT = 33435;

interface Scenario {
  name: string;
  scheduler: string;
  flags?: string[];
  /** Real servers in the order they are added, with weights. */
  servers: [string, number][];
  /** VIPs; one service per VIP, each with the same servers. */
  vips: string[];
  /** Clients in sending order: [source address, VIP]. */
  clients: [string, string][];
}

const client = (i: number) => `10.9.${Math.floor(i / 250)}.${(i % 250) + 1}`;
const three: [string, number][] = [
  ["10.1.0.1", 3],
  ["10.1.0.2", 2],
  ["10.1.0.3", 1],
];
const five: [string, number][] = [
  ["10.1.0.1", 1],
  ["10.1.0.2", 4],
  ["10.1.0.3", 2],
  ["10.1.0.4", 0],
  ["10.1.0.5", 5],
];

// Connection entries outlive `ipvsadm -C` (UDP: 5 min), so every scenario has VIPs of its own.
let nextVip = 0;
function sequential(
  name: string,
  scheduler: string,
  servers: [string, number][],
  n: number,
  flags?: string[],
): Scenario {
  const vip = `10.0.${100 + Math.floor(nextVip / 250)}.${(nextVip++ % 250) + 1}`;
  const s: Scenario = { name, scheduler, servers, vips: [vip], clients: [] };
  if (flags) s.flags = flags;
  for (let i = 0; i < n; i++) s.clients.push([client(i), vip]);
  return s;
}

const scenarios: Scenario[] = [
  ...["rr", "wrr", "lc", "wlc", "sed", "nq", "fo", "ovf", "lblc", "lblcr"].flatMap((s) => [
    sequential(`${s} weights 3,2,1`, s, three, 14),
    sequential(`${s} weights 1,4,2,0,5`, s, five, 20),
  ]),
  sequential("sh over 120 clients", "sh", five, 120),
  sequential("sh sh-fallback over 60 clients", "sh", five, 60, ["sh-fallback"]),
  sequential("mh over 120 clients", "mh", five, 120),
  sequential("mh mh-fallback over 60 clients", "mh", five, 60, ["mh-fallback"]),
  sequential(
    "sh equal weights over 60 clients",
    "sh",
    three.map(([a]) => [a, 1] as [string, number]),
    60,
  ),
  (() => {
    const vips = Array.from({ length: 40 }, (_, i) => `10.0.1.${i + 1}`);
    return {
      name: "dh over 40 VIPs",
      scheduler: "dh",
      servers: five,
      vips,
      clients: vips.map((v, i) => [client(i), v] as [string, string]),
    };
  })(),
];

function kernelScript(s: Scenario): string {
  const lines = [GUEST_RESET];
  for (const vip of s.vips) {
    lines.push(`ipvsadm -A -u ${vip}:${PORT} -s ${s.scheduler}${s.flags ? ` -b ${s.flags.join(",")}` : ""}`);
    for (const [addr, w] of s.servers) lines.push(`ipvsadm -a -u ${vip}:${PORT} -r ${addr} -g -w ${w}`);
  }
  const srcs = s.clients.map(([src, vip]) => `${src},${vip}`).join(" ");
  lines.push(
    `for c in ${srcs}; do traceroute -n -f 1 -m 1 -q 1 -w 1 -s \${c%,*} \${c#*,} >/dev/null 2>&1; done`,
    "ipvsadm -L -n -c",
  );
  return lines.join("\n");
}

function kernelChoices(s: Scenario, listing: string): string[] {
  const bySource = new Map<string, string>();
  for (const line of listing.split("\n")) {
    const m = /^UDP\s+\S+\s+UDP\s+([\d.]+):\d+\s+([\d.]+):\d+\s+([\d.]+):\d+/.exec(line);
    if (m?.[1] && m[2] && m[3]) bySource.set(`${m[1]}>${m[2]}`, m[3]);
  }
  return s.clients.map(([src, vip]) => bySource.get(`${src}>${vip}`) ?? "-");
}

function tvsChoices(s: Scenario): string[] {
  const table = new ServiceTable(createDefaultRegistry(), {
    clock: new ManualClock(1_000_000),
    random: seededRandom(1),
  });
  for (const vip of s.vips) {
    const key: ServiceKey = { kind: "vip", protocol: "udp", addr: vip, port: PORT };
    table.addService(key, serviceOptions(4, { scheduler: s.scheduler, schedFlags: s.flags ?? [] }));
    for (const [addr, w] of s.servers) table.addDest(key, destSpec(addr, PORT, { weight: w }));
  }
  return s.clients.map(([src, vip], i) => {
    const svc = table.get({ kind: "vip", protocol: "udp", addr: vip, port: PORT });
    if (!svc) return "?";
    const d = svc.sched.schedule({ family: 4, protocol: "udp", saddr: src, sport: 40000 + i, daddr: vip, dport: PORT });
    if (!d) return "-";
    d.bind("inactive");
    return d.addr;
  });
}

describe("scheduling: tvs core schedulers against kernel IPVS", { timeout: 1_800_000 }, () => {
  let vm: KernelVm;
  before(async () => {
    vm = await KernelVm.boot();
    const setup = await vm.run(guestSetupScript());
    assert.equal(setup.code, 0, setup.stderr);
    // Client source addresses on eth0; VIPs and real servers routed out of eth0 (nothing answers).
    const n = Math.max(...scenarios.map((s) => s.clients.length));
    const batch = Array.from({ length: n }, (_, i) => `addr add ${client(i)}/32 dev eth0`);
    batch.push("route add 10.0.0.0/16 dev eth0", "route add 10.1.0.0/16 dev eth0");
    const r = await vm.run(
      `printf '%s\\n' ${batch.map((b) => `'${b}'`).join(" ")} > /tmp/batch; /sbin/ip -batch /tmp/batch`,
    );
    assert.equal(r.code, 0, r.stderr);
  });
  after(async () => {
    await vm?.close();
  });

  for (const s of scenarios.filter((x) => !process.env.ORACLE_FILTER || x.name.includes(process.env.ORACLE_FILTER))) {
    test(s.name, async () => {
      const r = await vm.run(kernelScript(s), { timeoutMs: 600_000 });
      assert.equal(r.code, 0, r.stderr);
      const kernel = kernelChoices(s, r.stdout);
      // "-": the kernel made no entry (dh/sh without fallback refuse a weight-0 bucket owner).
      const made = kernel.filter((d) => d !== "-").length;
      assert.ok(made >= kernel.length / 2, `Too few kernel connection entries (${made}): ${kernel.join(" ")}`);
      if (process.env.ORACLE_DEBUG) console.log(kernelScript(s), r.stdout);
      assert.deepEqual(tvsChoices(s), kernel, `${s.name}: tvs choices (actual) vs the kernel's (expected)`);
    });
  }
});
