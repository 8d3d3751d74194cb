// `tvs lab ecmp`: active-active directors behind ECMP. A router namespace runs Debian's BIRD 2
// with BGP sessions to three directors, installs one multipath route per VIP (merge paths) and
// hashes flows on their L4 ports (fib_multipath_hash_policy=1). Each director runs tvsd on the
// packet data plane in DR mode with sloppy_tcp (option or tvs sysctl) and a keepalived.conf whose tvs_announce block
// makes tvsd run its own BIRD and announce the VIP. Two real servers (tvs realserver, DR) run a
// line server; a client on another subnet holds --held connections open from as many source ports.
// For each scheduler (mh with mh-port, then wlc) the run shows the spread of the held connections
// over the directors, kills director 3 (SIGKILL: its BIRD dies with it) and reports the time until
// the router's route lost that next hop and how many held connections broke, then starts it again
// and reports the time until the route has it back and how many broke when flows moved to it.
// Target: none broken under mh. `--family 6` runs the same with an IPv6 VIP, announced over IPv6
// BGP sessions to a router hashing IPv6 flows on L4 (net.ipv6.fib_multipath_hash_policy=1).
//
// `--forward fullnat`: the same with FULLNAT (lb_kind FNAT), where the director holds state the
// connection cannot live without. Each director has its own local address (10.90.8.1x, announced
// over BGP as a /32 with the VIP) and announces the other two directors' local addresses as a
// backup (tvs_announce backup_addr: its AS prepended, so the router uses them only when their owner
// is gone). The real servers' gateway is the router, so their replies reach the director whose
// local address the connection uses, or, once that director is dead, one of the backups. Each run
// is done twice: with connection sync among all directors (each a master, syncid i, and a backup,
// syncid 0: tvsadm --start-daemon) and without. Without sync a flow that lands on another director
// is scheduled afresh (sloppy_tcp) with that director's local address, which the real server has
// never seen: it answers with a reset. With sync the director finds the entry and keeps the
// original local address; replies come back through the original director, or a backup that
// learned the entry too.

import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ipIn, run, runIn, spawnIn } from "../exec.ts";
import { HOLDING_CLIENT, LINE_SERVER, lines } from "../held-connections.ts";
import type { LabContext, LabExperiment, LabOutcome, LabValues } from "../lab-experiment.ts";
import { Lab } from "../netns.ts";
import { LabOptionError, positiveInt, str } from "../option-values.ts";
import { REPO_ROOT, TVS_BIN } from "../topology.ts";
import { startTvsdConf, stopChild, type TvsdProcess, waitFor } from "../vrrp-pair.ts";

export const ecmp: LabExperiment = {
  options: {
    held: { type: "string", default: "60", help: "connections the client holds open (one source port each)" },
    schedulers: { type: "string", default: "mh,wlc", help: "schedulers to compare, comma-separated" },
    forward: { type: "string", default: "dr", help: "forwarding method: dr, or fullnat (with a sync mesh)" },
    family: { type: "string", default: "4", help: "4, or 6: an IPv6 VIP announced over IPv6 BGP sessions (DR)" },
    sync: {
      type: "string",
      default: "",
      help: "fullnat: connection sync among the directors, on, off or on,off (default on,off)",
    },
  },
  run: runEcmp,
};

const NET = "10.90.0";
export const ECMP_LAB = {
  routerInside: `${NET}.1`,
  routerOutside: "10.90.1.1",
  client: "10.90.1.100",
  directors: [`${NET}.11`, `${NET}.12`, `${NET}.13`] as const,
  reals: [`${NET}.21`, `${NET}.22`] as const,
  /**
   * FULLNAT: each director's local address (routed: announced over BGP, not on the segment), for
   * the first run; run r uses 10.90.8.(11 + 10r + i) (see localsOfRun).
   */
  locals: ["10.90.8.11", "10.90.8.12", "10.90.8.13"] as const,
  vip: "10.90.9.1",
  routerAsn: 65000,
  directorAsn: 65001,
};
const TVSADM = join(REPO_ROOT, "bin", "tvsadm.js");

/** `--family 6`: the same picture over IPv6 (the IPv4 addresses stay; BGP runs over IPv6). */
export const ECMP_LAB6 = {
  routerInside: "fd90::1",
  routerOutside: "fd91::1",
  client: "fd91::100",
  directors: ["fd90::11", "fd90::12", "fd90::13"] as const,
  reals: ["fd90::21", "fd90::22"] as const,
  vip: "fd99::1",
};

/**
 * The directors' local addresses in run `r`: new ones for every run, because a run without sync
 * leaves the real servers' kernels holding (or retransmitting FINs on) connections from local
 * address:port pairs the next run's directors would hand out again (each pool starts at the same
 * port), and a new connection would meet that stale socket.
 */
export function localsOfRun(r: number): string[] {
  return [0, 1, 2].map((i) => `10.90.8.${11 + 10 * r + i}`);
}

/**
 * The keepalived.conf director i runs: the service (DR, or FULLNAT) and the tvs_announce block;
 * with FULLNAT the other directors' local addresses are its backup_addr.
 */
export function ecmpDirectorConf(
  i: number,
  scheduler: string,
  runDir: string,
  forward: "dr" | "fullnat" = "dr",
  locals: readonly string[] = ECMP_LAB.locals,
  family: 4 | 6 = 4,
): string {
  const L = ECMP_LAB;
  const backups = locals.filter((_, k) => k !== i);
  const vip = family === 6 ? ECMP_LAB6.vip : L.vip;
  const reals = family === 6 ? ECMP_LAB6.reals : L.reals;
  return `tvs_announce {
    bgp_asn ${L.directorAsn}
    router_id ${L.directors[i]}
    bgp_peer ${family === 6 ? ECMP_LAB6.routerInside : L.routerInside} as ${L.routerAsn}
    hold_time 3
    run_dir ${runDir}
${forward === "fullnat" ? `    backup_addr ${backups.join(" ")}\n` : ""}}
virtual_server ${vip} 80 {
    lb_algo ${scheduler}
${scheduler === "mh" ? "    mh-port\n" : ""}    lb_kind ${forward === "fullnat" ? "FNAT" : "DR"}
    protocol TCP
${reals.map((r) => `    real_server ${r} 80 {\n    }`).join("\n")}
}
`;
}

/**
 * The router's BIRD: a BGP session per director, routes merged into one multipath kernel route;
 * with `bfd`, BFD on every session (100 ms × 3).
 */
export function ecmpRouterConf(logFile: string, bfd = false, six = false): string {
  const L = ECMP_LAB;
  const v6 = six
    ? `protocol kernel kernel6 {
  ipv6 { export all; import none; };
  merge paths on;
}
template bgp director6 {
  local as ${L.routerAsn};
  hold time 3;
  keepalive time 1;
  connect retry time 1;
  error wait time 1, 5;
  ipv6 { import all; export none; };
}
${ECMP_LAB6.directors.map((d, i) => `protocol bgp d${i + 1}v6 from director6 { neighbor ${d} as ${L.directorAsn}; }`).join("\n")}
`
    : "";
  return `log "${logFile}" all;
router id ${L.routerInside};
protocol device {}
${bfd ? 'protocol bfd {\n  interface "*" { interval 100 ms; multiplier 3; };\n}\n' : ""}protocol kernel {
  ipv4 { export all; import none; };
  merge paths on;
}
${v6}
template bgp director {
  local as ${L.routerAsn};
  hold time 3;
  keepalive time 1;
  connect retry time 1;
  error wait time 1, 5;
${bfd ? "  bfd on;\n" : ""}  ipv4 { import all; export none; };
}
${L.directors.map((d, i) => `protocol bgp d${i + 1} from director { neighbor ${d} as ${L.directorAsn}; }`).join("\n")}
`;
}

export interface EcmpPhase {
  /** ms from the kill (or the start) until the router's route lost (or gained) the director. */
  routeMs: number;
  broken: number;
  fraction: number;
}

export interface EcmpRun {
  scheduler: string;
  /** FULLNAT runs only (a DR run has neither): the method, and whether the directors synced. */
  forward?: "fullnat";
  sync?: boolean;
  held: number;
  /** Held connections per director (entries in its connection table), before the kill. */
  spread: number[];
  leave: EcmpPhase;
  join: EcmpPhase;
}

export interface EcmpSummary {
  held: number;
  /** Present for --forward fullnat. */
  forward?: "fullnat";
  /** Present for --family 6, with the IPv6 VIP. */
  family?: 6;
  vip?: string;
  runs: EcmpRun[];
}

async function nextHops(ns: string, addr: string = ECMP_LAB.vip): Promise<string[]> {
  const six = addr.includes(":");
  const r = await run("ip", ["-n", ns, ...(six ? ["-6"] : []), "route", "show", `${addr}/${six ? 128 : 32}`]);
  return [...r.stdout.matchAll(/via (\S+)/g)].map((m) => m[1]!).sort();
}

async function runEcmp(values: LabValues, ctx: LabContext): Promise<LabOutcome> {
  const held = positiveInt(str(values, "held"), "--held");
  const schedulers = str(values, "schedulers")
    .split(",")
    .filter((s) => s !== "");
  const forward = str(values, "forward");
  if (forward !== "dr" && forward !== "fullnat")
    throw new LabOptionError(
      `--forward "${forward}" must be dr or fullnat (NAT behind ECMP: see docs/ecmp.md, the router hashes the replies apart from the requests)`,
    );
  const syncText = str(values, "sync");
  if (forward === "dr" && syncText !== "")
    throw new LabOptionError(`--sync "${syncText}" applies to --forward fullnat (DR keeps no state to sync)`);
  const syncModes = (syncText === "" ? "on,off" : syncText).split(",").map((m) => {
    if (m !== "on" && m !== "off") throw new LabOptionError(`--sync "${syncText}" must be on, off or on,off`);
    return m === "on";
  });
  const fullnat = forward === "fullnat";
  const familyText = str(values, "family");
  if (familyText !== "4" && familyText !== "6") throw new LabOptionError(`--family "${familyText}" must be 4 or 6`);
  const six = familyText === "6";
  if (six && fullnat) throw new LabOptionError("--family 6 runs with --forward dr (the FULLNAT mesh is IPv4 here)");
  const vip = six ? ECMP_LAB6.vip : ECMP_LAB.vip;
  const vipPort = six ? `[${vip}]:80` : `${vip}:80`;
  const dirAddrs: readonly string[] = six ? ECMP_LAB6.directors : ECMP_LAB.directors;
  const L = ECMP_LAB;
  const lab = new Lab();
  const dir = mkdtempSync(join(tmpdir(), "tvs-lab-ecmp-"));
  const procs: ChildProcess[] = [];
  let tvsds: (TvsdProcess | undefined)[] = [];
  const log = ctx.log;
  try {
    await lab.createSwitch();
    const router = await lab.addHost("router");
    const client = await lab.addHost("client");
    const dh = [await lab.addHost("d1"), await lab.addHost("d2"), await lab.addHost("d3")];
    const rh = [await lab.addHost("rs1"), await lab.addHost("rs2")];
    // One segment, two subnets: the client's (10.90.1.0/24) and the directors' and real servers'.
    await ipIn(router.ns, "addr", "add", `${L.routerInside}/24`, "dev", "eth0");
    await ipIn(router.ns, "addr", "add", `${L.routerOutside}/24`, "dev", "eth0");
    for (const k of [
      "net.ipv4.ip_forward=1",
      "net.ipv4.fib_multipath_hash_policy=1",
      "net.ipv4.conf.all.send_redirects=0",
      "net.ipv4.conf.eth0.send_redirects=0",
    ])
      await runIn(router.ns, "sysctl", ["-qw", k]);
    await ipIn(client.ns, "addr", "add", `${L.client}/24`, "dev", "eth0");
    await ipIn(client.ns, "route", "add", "default", "via", L.routerOutside);
    // The client is behind the router: it shares the lab's one segment, but answers ARP only from
    // its own subnet (arp_ignore=2), so a director can reach it only through the router, as over
    // a routed network. Each director's kernel routes the client's subnet via the router.
    await runIn(client.ns, "sysctl", ["-qw", "net.ipv4.conf.all.arp_ignore=2"]);
    for (const [i, h] of dh.entries()) {
      await ipIn(h.ns, "addr", "add", `${L.directors[i]}/24`, "dev", "eth0");
      await ipIn(h.ns, "route", "add", "default", "via", L.routerInside);
    }
    if (six) {
      // IPv6 on every host (the lab turns it off by default), addresses without DAD; the router
      // forwards and hashes IPv6 on L4 too. Redirects are refused: the router forwards out of the
      // interface a packet came in on, and a client or real server taking its redirect would go
      // straight to one director (IPv4 turns send_redirects off on the router instead).
      const L6 = ECMP_LAB6;
      for (const h of [router, client, ...dh, ...rh]) {
        for (const dev of ["all", "default", "lo", "eth0"])
          await runIn(h.ns, "sysctl", ["-qw", `net.ipv6.conf.${dev}.disable_ipv6=0`]);
        for (const dev of ["all", "eth0"])
          await runIn(h.ns, "sysctl", ["-qw", `net.ipv6.conf.${dev}.accept_redirects=0`]);
      }
      await ipIn(router.ns, "-6", "addr", "add", `${L6.routerInside}/64`, "dev", "eth0", "nodad");
      await ipIn(router.ns, "-6", "addr", "add", `${L6.routerOutside}/64`, "dev", "eth0", "nodad");
      for (const k of ["net.ipv6.conf.all.forwarding=1", "net.ipv6.fib_multipath_hash_policy=1"])
        await runIn(router.ns, "sysctl", ["-qw", k]);
      await ipIn(client.ns, "-6", "addr", "add", `${L6.client}/64`, "dev", "eth0", "nodad");
      await ipIn(client.ns, "-6", "route", "add", "default", "via", L6.routerOutside);
      for (const [i, h] of dh.entries())
        await ipIn(h.ns, "-6", "addr", "add", `${L6.directors[i]}/64`, "dev", "eth0", "nodad");
      for (const [i, h] of rh.entries()) {
        await ipIn(h.ns, "-6", "addr", "add", `${L6.reals[i]}/64`, "dev", "eth0", "nodad");
        await ipIn(h.ns, "-6", "addr", "add", `${L6.vip}/128`, "dev", "lo", "nodad");
        await ipIn(h.ns, "-6", "route", "add", "default", "via", L6.routerInside);
      }
    }
    for (const [i, h] of rh.entries()) {
      await ipIn(h.ns, "addr", "add", `${L.reals[i]}/24`, "dev", "eth0");
      await ipIn(h.ns, "route", "add", "default", "via", L.routerInside);
      if (!fullnat && !six)
        await runIn(h.ns, process.execPath, [TVS_BIN, "realserver", "start", "--vip", L.vip, "--mode", "dr"], {
          timeoutMs: 60_000,
        });
      const p = spawnIn(h.ns, process.execPath, ["-e", LINE_SERVER, `rs${i + 1}`, "80", six ? "::" : "0.0.0.0"]);
      procs.push(p);
      if ((await lines(p)()) !== "listening") throw new Error(`The line server on rs${i + 1} did not start`);
    }
    log(
      fullnat
        ? `# real servers ${L.reals.join(", ")}: default route via the router (FULLNAT replies go to the local addresses)`
        : six
          ? `# real servers ${ECMP_LAB6.reals.join(", ")}: ${vip}/128 on lo, default route via the router`
          : `# real servers ${L.reals.join(", ")}: tvs realserver start --vip ${L.vip} --mode dr`,
    );
    const routerConf = join(dir, "router-bird.conf");
    writeFileSync(routerConf, ecmpRouterConf(join(dir, "router-bird.log"), false, six));
    const bird = spawnIn(router.ns, "bird", ["-f", "-c", routerConf, "-s", join(dir, "router-bird.ctl")]);
    procs.push(bird);
    log(
      `# router: BIRD 2, BGP to d1..d3${six ? " over IPv6" : ""}, merge paths, fib_multipath_hash_policy=1${six ? " (net.ipv6)" : ""}`,
    );

    const runs: EcmpRun[] = [];
    const args = ["--dataplane", "packet", "--interface", "eth0"];
    // d1 and d2 get sloppy_tcp from the option, d3 through the control API (tvs sysctl) once it
    // answers: both surfaces are exercised, and a lost setting would show as broken flows.
    const sloppyThroughApi = async (d: TvsdProcess): Promise<void> => {
      await waitFor(
        "d3's control socket",
        async () => (await d.client.status().catch(() => undefined)) !== undefined,
        30_000,
        50,
      );
      await run(process.execPath, [TVS_BIN, "sysctl", "--socket", d.socket, "sloppy_tcp=1"]);
    };
    type Variant = { scheduler: string; sync: boolean | undefined };
    const variants = schedulers.flatMap((scheduler): Variant[] =>
      fullnat ? syncModes.map((sync) => ({ scheduler, sync })) : [{ scheduler, sync: undefined }],
    );
    for (const [runIndex, { scheduler, sync }] of variants.entries()) {
      const locals = localsOfRun(runIndex);
      const tag = `${scheduler}${sync === undefined ? "" : sync ? "-sync" : "-nosync"}`;
      const start = (i: number): TvsdProcess =>
        startTvsdConf(
          dh[i]!.ns,
          dir,
          ecmpDirectorConf(
            i,
            scheduler,
            join(dir, `bird-d${i + 1}-${tag}`),
            fullnat ? "fullnat" : "dr",
            locals,
            six ? 6 : 4,
          ),
          `d${i + 1}-${tag}`,
          [
            ...args,
            ...(i < 2 ? ["--sloppy-tcp"] : []),
            ...(fullnat ? ["--local-addrs", locals[i]!] : []),
            // Sync mesh: each director a master (syncid i + 1) and a backup (syncid 0: every
            // master's), started with tvsd so that it announces nothing before its bulk resync.
            ...(sync ? ["--sync-daemon", `master:eth0,syncid=${i + 1}`, "--sync-daemon", "backup:eth0,syncid=0"] : []),
          ],
        );
      // With FULLNAT, each local address is routed to its own director only while that one lives.
      const localsRouted = async (alive: readonly number[]): Promise<boolean> => {
        if (!fullnat) return true;
        for (const [k, addr] of locals.entries()) {
          const hops = await nextHops(router.ns, addr);
          const want = alive.includes(k) ? [L.directors[k]] : alive.map((j) => L.directors[j]).sort();
          if (hops.join() !== want.join()) return false;
        }
        return true;
      };
      log(
        `\n## ${scheduler}${fullnat ? `, FULLNAT, sync ${sync ? "on" : "off"}` : ""}: three directors: tvsd --config keepalived.conf ${args.join(" ")}${fullnat ? ` --local-addrs ${locals[0]} (${locals[1]}, ${locals[2]})` : ""} (tvs_announce)`,
      );
      log("# d1, d2 with --sloppy-tcp; d3: tvs sysctl sloppy_tcp=1 through its control socket");
      if (fullnat)
        log(
          `# local addresses ${locals.join(", ")} announced by their directors; the others' as backup_addr (AS path prepended)`,
        );
      tvsds = [start(0), start(1), start(2)];
      if (sync) log("# sync mesh: tvsd --sync-daemon master:eth0,syncid=i --sync-daemon backup:eth0,syncid=0");
      await sloppyThroughApi(tvsds[2]!);
      await waitFor(
        "three next hops on the router",
        async () => (await nextHops(router.ns, vip)).length === 3,
        30_000,
        50,
      );
      await waitFor("each local address routed to its director", () => localsRouted([0, 1, 2]), 30_000, 50);
      log(`# router: ${vip} via ${(await nextHops(router.ns, vip)).join(", ")}`);

      // Connections each director scheduled itself (FULLNAT: every director lists every entry once
      // synced, so the spread is read from the service's connection counter, before and after).
      const scheduled = async (d: TvsdProcess): Promise<number> => {
        const out = (await run(process.execPath, [TVSADM, "--socket", d.socket, "-L", "-n", "--stats"])).stdout;
        const line = out.split("\n").find((l) => l.includes(vipPort)) ?? "";
        return Number(line.trim().split(/\s+/)[2] ?? 0);
      };
      const baseline = fullnat ? await Promise.all(tvsds.map((d) => scheduled(d!))) : [];
      const holder = spawn(
        "ip",
        ["netns", "exec", client.ns, process.execPath, "-e", HOLDING_CLIENT, vip, String(held)],
        { stdio: ["pipe", "pipe", "pipe"] },
      );
      procs.push(holder);
      const next = lines(holder);
      const ping = async (): Promise<number> => {
        holder.stdin?.write("ping\n");
        const got = JSON.parse(await next()) as string[];
        return got.filter((r) => r.startsWith("ERR")).length;
      };
      // Two rounds with FULLNAT: SYN, ACK and two data segments, past the sync threshold (3 packets).
      for (let k = 0; k < (fullnat ? 2 : 1); k++) {
        const before = await ping();
        if (before > 0) throw new Error(`${before} of ${held} connections did not answer before any change`);
      }
      const spread: number[] = [];
      for (const d of tvsds) {
        if (fullnat) spread.push((await scheduled(d!)) - baseline[spread.length]!);
        else {
          const out = (await run(process.execPath, [TVSADM, "--socket", d!.socket, "-L", "-n", "-c"])).stdout;
          spread.push(out.split("\n").filter((l) => l.includes(vipPort)).length);
        }
      }
      log(`# ${held} connections held open; per director: ${spread.map((n, i) => `d${i + 1} ${n}`).join(", ")}`);
      if (sync) {
        // Within the 2 s flush every director holds every held connection's entry.
        holder.stdin?.write("ports\n");
        const ports = JSON.parse(await next()) as number[];
        const holds = async (d: TvsdProcess) => {
          const listing = (await run(process.execPath, [TVSADM, "--socket", d.socket, "-L", "-n", "-c"])).stdout;
          const have = new Set(
            listing
              .split("\n")
              .filter((l) => l.includes(vipPort) && l.includes("ESTABLISHED"))
              .map((l) => l.trim().split(/\s+/)[3]),
          );
          return ports.every((p) => have.has(`${L.client}:${p}`));
        };
        await waitFor(
          "every director to hold every entry",
          async () => (await Promise.all(tvsds.map((d) => holds(d!)))).every(Boolean),
          10_000,
          100,
        );
        log(`# synced: every director lists all ${held} entries`);
      }

      log("# director 3 dies: SIGKILL (its BIRD goes with it)");
      const killedAt = performance.now();
      await tvsds[2]!.stop("SIGKILL");
      await waitFor(
        "d3's next hop withdrawn",
        async () => !(await nextHops(router.ns, vip)).includes(dirAddrs[2]!),
        15_000,
        10,
      );
      await waitFor("d3's local address routed to the backups", () => localsRouted([0, 1]), 15_000, 10);
      const leaveMs = Math.round(performance.now() - killedAt);
      const leaveBroken = await ping();
      log(`# route withdrawn after ${leaveMs} ms; held connections broken: ${leaveBroken} of ${held}`);

      log("# director 3 joins again");
      const joinAt = performance.now();
      tvsds[2] = start(2);
      await sloppyThroughApi(tvsds[2]!);
      await waitFor(
        "d3's next hop back",
        async () => (await nextHops(router.ns, vip)).includes(dirAddrs[2]!),
        30_000,
        10,
      );
      await waitFor("d3's local address back", () => localsRouted([0, 1, 2]), 30_000, 10);
      const joinMs = Math.round(performance.now() - joinAt);
      const alive = held - leaveBroken;
      const joinBroken = (await ping()) - leaveBroken;
      log(
        `# route back after ${joinMs} ms (tvsd start included); broken when flows moved to it: ${joinBroken} of ${alive}`,
      );
      // FULLNAT: connections that broke by timing out still retransmit from the client's kernel
      // after a plain exit; a reset ends them so they cannot reach the next run's directors.
      holder.stdin?.write(fullnat ? "reset\n" : "quit\n");
      await stopChild(holder, 2000);
      runs.push({
        scheduler,
        ...(fullnat ? { forward: "fullnat" as const, sync: sync === true } : {}),
        held,
        spread,
        leave: { routeMs: leaveMs, broken: leaveBroken, fraction: leaveBroken / held },
        join: { routeMs: joinMs, broken: joinBroken, fraction: alive > 0 ? joinBroken / alive : 0 },
      });
      for (const d of tvsds) await d?.stop("SIGTERM");
      await waitFor("routes withdrawn", async () => (await nextHops(router.ns, vip)).length === 0, 15_000, 50);
      tvsds = [];
    }
    log("\nscheduler  spread        leave: route ms, broken   join: route ms, broken");
    for (const r of runs)
      log(
        `${(r.sync === undefined ? r.scheduler : `${r.scheduler} ${r.sync ? "sync" : "nosync"}`).padEnd(10)} ${r.spread.join("/").padEnd(13)} ${String(r.leave.routeMs).padStart(6)} ms, ${r.leave.broken}/${r.held}`.padEnd(
          52,
        ) + `${String(r.join.routeMs).padStart(6)} ms, ${r.join.broken}/${r.held - r.leave.broken}`,
      );
    // Targets: DR under mh breaks nothing; FULLNAT with sync breaks nothing (any scheduler: the
    // synced entry decides, not the scheduler).
    const mh = runs.find((r) => r.scheduler === "mh");
    const ok =
      runs.length > 0 &&
      runs.every((r) => r.spread.filter((n) => n > 0).length >= 2) &&
      (fullnat
        ? runs.filter((r) => r.sync).every((r) => r.leave.broken === 0 && r.join.broken === 0)
        : mh === undefined || (mh.leave.broken === 0 && mh.join.broken === 0));
    const summary: EcmpSummary = {
      held,
      ...(fullnat ? { forward: "fullnat" as const } : {}),
      ...(six ? { family: 6 as const, vip } : {}),
      runs,
    };
    return { ok, summary };
  } finally {
    if (!ctx.keep) {
      for (const d of tvsds) await d?.stop("SIGKILL").catch(() => undefined);
      for (const p of procs) if (p.pid && p.exitCode === null && p.signalCode === null) process.kill(p.pid, "SIGKILL");
      await lab.destroy();
      rmSync(dir, { recursive: true, force: true });
    }
  }
}
