// `tvs lab pitfalls` (seed 001's two failed first attempts, then the fixes):
//
// NAT without a route back. The real servers share the client's segment and have no route to the
// client through the director, so they answer the client directly, from their own address. The
// client's TCP has sent its SYN to the VIP and does not know the real server's SYN-ACK: it resets
// it, and curl gets nothing. A capture on the client shows the SYN-ACK coming from the real server's
// address instead of the VIP. Fix (the seed's): `ip r add CLIENT/32 via DIRECTOR` on each real
// server, so replies pass the director, which rewrites their source back to the VIP.
//
// DR with the VIP equal to the director's own address. Each real server holds the VIP on lo, so it
// holds the director's address; the director's ARP request for a real server comes from that
// address, which the real server takes for a packet from itself (a martian source) and never
// answers. The director cannot learn the real servers' MACs and DR forwarding stops there. A
// capture on a real server shows the requests and no reply. Fix: a VIP of its own (seed 001's .22).

import { Capture } from "../capture.ts";
import { runIn } from "../exec.ts";
import { Experiment } from "../experiment.ts";
import type { LabContext, LabExperiment, LabOutcome, LabValues } from "../lab-experiment.ts";
import { LabOptionError } from "../option-values.ts";
import { HTTP_PORT, prepareRealServer, type RealServer, TVS_BIN } from "../topology.ts";

export const pitfalls: LabExperiment = {
  options: {
    case: { type: "string", default: "both", help: "which failure: nat, dr or both" },
  },
  run,
};

const REQUESTS = 4;

interface CaseResult {
  /** Who answered each request while broken ("" = no answer). */
  broken: string[];
  /** What the capture showed while broken (abridged). */
  evidence: string[];
  diagnosis: string;
  /** What `tvs status` notes about the broken set-up (its pitfall line), if anything. */
  tvsNote: string | undefined;
  fixed: string[];
  /** True when every broken request failed and every fixed one was answered. */
  reproduced: boolean;
  namespaces: string[];
}

async function requests(exp: Experiment, ctx: LabContext, vip: string): Promise<string[]> {
  const out: string[] = [];
  for (let i = 1; i <= REQUESTS; i++) {
    const who = await exp.request("/", HTTP_PORT, vip, 2);
    out.push(who);
    ctx.log(`curl ${vip}  # ${i}: ${who || "(no answer)"}`);
  }
  return out;
}

async function natCase(ctx: LabContext): Promise<CaseResult> {
  ctx.log("## NAT where the real servers do not route replies back through the director");
  const exp = await Experiment.start({
    mode: "nat",
    unprepared: true,
    configure: false,
    keep: ctx.keep,
    log: ctx.log,
    addresses: ctx.addresses,
  });
  try {
    const { vip, client, director } = exp.topo.plan;
    const svc = `${vip}:${HTTP_PORT}`;
    await exp.tvsadm(["-A", "-t", svc, "-s", "rr"]);
    for (const rs of exp.topo.realServers) await exp.tvsadm(["-a", "-t", svc, "-r", `${rs.ip}:${HTTP_PORT}`, "-m"]);
    const rsIps = exp.topo.realServers.map((r) => r.ip);
    const cap = await Capture.start(exp.topo.client.ns, `tcp and src port ${HTTP_PORT}`);
    const broken = await requests(exp, ctx, vip);
    const seen = await cap.stop();
    const fromRs = seen.filter((l) => rsIps.some((ip) => l.includes(` ${ip}.${HTTP_PORT} > ${client}.`)));
    const fromVip = seen.filter((l) => l.includes(` ${vip}.${HTTP_PORT} > `));
    const evidence = [
      `client capture: ${fromRs.length} packets from the real servers' own addresses, ${fromVip.length} from the VIP`,
      ...fromRs.slice(0, 3),
    ];
    for (const e of evidence) ctx.log(`# ${e}`);
    const diagnosis =
      fromRs.length > 0 && fromVip.length === 0
        ? `the real servers answer ${client} directly from their own addresses (no route back through the director ${director}), so the client resets replies it never asked for: route the client via the director on each real server`
        : `unexpected: ${fromVip.length} replies from the VIP, ${fromRs.length} from the real servers`;
    ctx.log(`# diagnosis: ${diagnosis}`);
    const tvsNote = await statusNote(exp, ctx, /no reply came back through this director/);
    ctx.log(`# fix: on each real server: ip r add ${client}/32 via ${director}`);
    for (const rs of exp.topo.realServers) await prepareRealServer(exp.topo, rs);
    const fixed = await requests(exp, ctx, vip);
    return {
      broken,
      evidence,
      diagnosis,
      tvsNote,
      fixed,
      namespaces: exp.topo.lab.hosts().map((h) => h.ns),
      reproduced: broken.every((b) => b === "") && fixed.every((f) => f !== "") && fromRs.length > 0,
    };
  } finally {
    await exp.stop(ctx.keep);
  }
}

/** The line of `tvs status` that names the mistake (see src/control/pitfalls.ts), logged. */
async function statusNote(exp: Experiment, ctx: LabContext, pattern: RegExp): Promise<string | undefined> {
  const note = (await exp.tvs(["status"])).split("\n").find((l) => pattern.test(l));
  ctx.log(`# tvs status: ${note?.trim() ?? "(no note)"}`);
  return note?.trim();
}

async function realserverCmd(rs: RealServer, action: "start" | "stop", vip: string): Promise<void> {
  await runIn(rs.host.ns, process.execPath, [TVS_BIN, "realserver", action, "--vip", vip, "--mode", "dr"], {
    timeoutMs: 60_000,
  });
}

async function drCase(ctx: LabContext): Promise<CaseResult> {
  ctx.log("## DR with the VIP equal to the director's own address");
  // No check from the director first: the real servers' ARP for it would teach tvsd their MACs.
  const exp = await Experiment.start({
    mode: "dr",
    unprepared: true,
    configure: false,
    awaitServers: false,
    keep: ctx.keep,
    log: ctx.log,
    addresses: ctx.addresses,
  });
  const { vip, director } = exp.topo.plan;
  const onLo = new Set<RealServer>();
  try {
    // The seed's first attempt: the director's address as the VIP, on every real server's lo.
    for (const rs of exp.topo.realServers) {
      ctx.log(`# ${rs.name}: tvs realserver start --vip ${director} --mode dr`);
      await realserverCmd(rs, "start", director);
      onLo.add(rs);
    }
    const svc = `${director}:${HTTP_PORT}`;
    await exp.tvsadm(["-A", "-t", svc, "-s", "rr"]);
    for (const rs of exp.topo.realServers) await exp.tvsadm(["-a", "-t", svc, "-r", `${rs.ip}:${HTTP_PORT}`, "-g"]);
    const first = exp.topo.realServers[0] as RealServer;
    const cap = await Capture.start(first.host.ns, "arp", true);
    const broken = await requests(exp, ctx, director);
    const seen = await cap.stop();
    const asked = seen.filter((l) => l.includes(`Request who-has ${first.ip} tell ${director}`));
    const answered = seen.filter((l) => l.includes(`Reply ${first.ip} is-at`));
    const evidence = [
      `${first.name} capture: ${asked.length} ARP requests "who-has ${first.ip} tell ${director}", ${answered.length} replies`,
      ...asked.slice(0, 2),
    ];
    for (const e of evidence) ctx.log(`# ${e}`);
    const diagnosis =
      asked.length > 0 && answered.length === 0
        ? `the real servers hold the director's address ${director} on lo, so the director's ARP requests (from ${director}) look like their own and go unanswered: the director never learns their MACs; give the VIP an address of its own`
        : `unexpected: ${asked.length} ARP requests, ${answered.length} replies`;
    ctx.log(`# diagnosis: ${diagnosis}`);
    const tvsNote = await statusNote(exp, ctx, /is also this host's own address/);
    ctx.log(`# fix: a VIP of its own (${vip}) on the real servers' lo and in the service`);
    await exp.tvsadm(["-D", "-t", svc]);
    for (const rs of exp.topo.realServers) {
      ctx.log(`# ${rs.name}: tvs realserver stop --vip ${director}; tvs realserver start --vip ${vip} --mode dr`);
      await realserverCmd(rs, "stop", director);
      onLo.delete(rs);
      await prepareRealServer(exp.topo, rs);
    }
    const fixedSvc = `${vip}:${HTTP_PORT}`;
    await exp.tvsadm(["-A", "-t", fixedSvc, "-s", "rr"]);
    for (const rs of exp.topo.realServers)
      await exp.tvsadm(["-a", "-t", fixedSvc, "-r", `${rs.ip}:${HTTP_PORT}`, "-g"]);
    const fixed = await requests(exp, ctx, vip);
    return {
      broken,
      evidence,
      diagnosis,
      tvsNote,
      fixed,
      namespaces: exp.topo.lab.hosts().map((h) => h.ns),
      reproduced:
        broken.every((b) => b === "") && fixed.every((f) => f !== "") && asked.length > 0 && answered.length === 0,
    };
  } finally {
    if (!ctx.keep) for (const rs of onLo) await realserverCmd(rs, "stop", director).catch(() => undefined);
    await exp.stop(ctx.keep);
  }
}

async function run(values: LabValues, ctx: LabContext): Promise<LabOutcome> {
  const which = String(values.case);
  if (!["nat", "dr", "both"].includes(which)) throw new LabOptionError(`--case "${which}" must be nat, dr or both`);
  const summary: { experiment: string; nat?: CaseResult; dr?: CaseResult; namespaces: string[] } = {
    experiment: "pitfalls",
    namespaces: [],
  };
  if (which !== "dr") summary.nat = await natCase(ctx);
  if (which !== "nat") {
    if (summary.nat) ctx.log("");
    summary.dr = await drCase(ctx);
  }
  summary.namespaces = [...(summary.nat?.namespaces ?? []), ...(summary.dr?.namespaces ?? [])];
  const ok = (summary.nat?.reproduced ?? true) && (summary.dr?.reproduced ?? true);
  return { ok, summary };
}
