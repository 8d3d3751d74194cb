// `tvs top`: a terminal view of tvsd refreshed every second, like `watch ipvsadm -L --rate` with
// the connection counts and health beside the rates. Rates are the kernel-style estimator's (the
// numbers `tvsadm -L --rate` prints); services and real servers are sorted as ipvsadm sorts them.
// Reads the control socket only (snapshot and status); q or Ctrl-C quits. Not on a terminal (or
// with --once) it prints frames one after another without clearing the screen.

import { ControlConnectError, HttpControlClient } from "../../control/api/client.ts";
import type { CheckView, DestView, ServiceView, Snapshot, StatusView } from "../../control/api/protocol.ts";
import { defaultSocketPath } from "../../control/api/socket-path.ts";
import { formatEndpoint } from "../../core/addr.ts";
import { compareDests, compareServices, largeNum } from "../tvsadm/format.ts";

const USAGE = `Usage: tvs top [--socket PATH] [-n SECONDS] [--count N] [--once]

  -n, --interval SECONDS   refresh every SECONDS (default 1, at least 0.2)
  --count N                stop after N frames
  --once                   one frame, then exit (same as --count 1)
`;

const FWD: Record<string, string> = {
  masq: "Masq",
  local: "Local",
  tunnel: "Tunnel",
  droute: "Route",
  fullnat: "FullNat",
};

function duration(ms: number): string {
  const s = Math.floor(ms / 1000);
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  return [d ? `${d}d` : "", h ? `${h}h` : "", m ? `${m}m` : "", `${s % 60}s`].filter(Boolean).join(" ");
}

function serviceName(s: ServiceView): string {
  const k = s.key;
  return k.kind === "fwmark"
    ? `FWM  ${k.fwmark}${k.family === 6 ? " IPv6" : ""}`
    : `${k.protocol.toUpperCase().padEnd(4)} ${formatEndpoint(k.addr, k.port)}`;
}

function serviceId(s: ServiceView): string {
  const k = s.key;
  return k.kind === "fwmark" ? `fwmark ${k.fwmark} ipv${k.family}` : `${k.protocol} ${formatEndpoint(k.addr, k.port)}`;
}

function health(checks: CheckView[] | undefined): string {
  if (!checks || checks.length === 0) return "";
  const bad = checks.find((c) => c.state !== "up") ?? checks[0];
  if (!bad) return "";
  const latency =
    bad.latencyMs !== undefined
      ? ` ${bad.latencyMs < 10 ? bad.latencyMs.toFixed(1) : Math.round(bad.latencyMs)}ms`
      : "";
  return `${bad.state}${latency}${bad.state !== "up" && bad.reason ? ` (${bad.reason})` : ""}`;
}

const num = (n: number) => largeNum(n, false);

function row(
  name: string,
  extra: string,
  weight: string,
  a: number,
  i: number,
  r: ServiceView["rates"],
  h: string,
): string {
  return `${name.padEnd(28)} ${extra.padEnd(8)} ${weight.padStart(6)} ${num(a)} ${num(i)} ${num(r.cps)} ${num(r.inPps)} ${num(r.outPps)} ${num(r.inBps)} ${num(r.outBps)}  ${h}`.trimEnd();
}

/** One frame of `tvs top` (pure: the tests give it a snapshot and a status). */
export function formatTop(snap: Snapshot, status: StatusView, opts: { intervalS: number; now?: Date }): string {
  const now = opts.now ?? new Date();
  const lines: string[] = [];
  const conns = status.notes.find((n) => n.startsWith("Connection table") || n.startsWith("Connection entries"));
  lines.push(
    `tvs top · tvsd pid ${status.pid} · ${status.dataplane} · up ${duration(status.uptimeMs)} · ${snap.services.length} service(s) · every ${opts.intervalS}s · ${now.toISOString().slice(11, 19)} UTC`,
  );
  if (conns) lines.push(conns);
  for (const d of snap.daemons) lines.push(`Sync ${d.state} daemon: syncid ${d.syncId} on ${d.mcastIfn}`);
  const r = snap.rates;
  lines.push(
    `Total: ${snap.stats.conns} connections · ${r.cps} conn/s · in ${r.inPps} pkt/s ${r.inBps} B/s · out ${r.outPps} pkt/s ${r.outBps} B/s`,
  );
  lines.push("");
  lines.push(
    `${"Prot LocalAddress:Port".padEnd(28)} ${"Sched".padEnd(8)} ${"Weight".padStart(6)} ${"ActConn".padStart(9)} ${"InActConn".padStart(9)} ${"CPS".padStart(9)} ${"InPPS".padStart(9)} ${"OutPPS".padStart(9)} ${"InBPS".padStart(9)} ${"OutBPS".padStart(9)}  Health`,
  );
  lines.push(`${"  -> RemoteAddress:Port".padEnd(28)} Forward`);
  const checks = new Map<string, CheckView[]>();
  for (const c of status.checks) {
    const key = `${c.service}|${c.dest}`;
    checks.set(key, [...(checks.get(key) ?? []), c]);
  }
  const services = [...snap.services].sort((a, b) => compareServices(a.key, b.key));
  for (const s of services) {
    const id = serviceId(s);
    const act = s.dests.reduce((n, d) => n + d.activeConns, 0);
    const inact = s.dests.reduce((n, d) => n + d.inactConns, 0);
    const sched = `${s.options.scheduler}${s.options.persistent ? " p" : ""}`;
    lines.push(row(serviceName(s), sched, "", act, inact, s.rates, ""));
    const shown = new Set<string>();
    for (const d of [...s.dests].sort(compareDests) as DestView[]) {
      const ep = formatEndpoint(d.spec.addr, d.spec.port);
      shown.add(ep);
      lines.push(
        row(
          `  -> ${ep}`,
          FWD[d.spec.fwd] ?? d.spec.fwd,
          String(d.spec.weight),
          d.activeConns,
          d.inactConns,
          d.rates,
          health(checks.get(`${id}|${ep}`)),
        ),
      );
    }
    // Checked real servers that are out of the table (down, not inhibited) are shown too.
    for (const [key, cs] of checks) {
      const [svc, ep] = key.split("|") as [string, string];
      if (svc === id && !shown.has(ep))
        lines.push(`${`  -> ${ep}`.padEnd(28)} ${"(out)".padEnd(8)} ${"".padStart(6)}${" ".repeat(70)}  ${health(cs)}`);
    }
  }
  return `${lines.join("\n")}\n`;
}

export async function run(argv: string[]): Promise<number> {
  let socket: string | undefined;
  let intervalS = 1;
  let count = Number.POSITIVE_INFINITY;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    const value = (): string | undefined => {
      const eq = a.indexOf("=");
      return eq !== -1 && a.startsWith("--") ? a.slice(eq + 1) : argv[++i];
    };
    const flag = a.startsWith("--") && a.includes("=") ? a.slice(0, a.indexOf("=")) : a;
    switch (flag) {
      case "-h":
      case "--help":
        process.stdout.write(USAGE);
        return 0;
      case "--socket":
        socket = value();
        if (socket === undefined) {
          process.stderr.write(`Option --socket needs a value\n${USAGE}`);
          return 2;
        }
        break;
      case "-n":
      case "--interval": {
        const v = value();
        const n = Number(v);
        if (v === undefined || !Number.isFinite(n) || n < 0.2 || n > 3600) {
          process.stderr.write(`Invalid ${flag} "${v ?? ""}" (expected seconds, 0.2..3600)\n${USAGE}`);
          return 2;
        }
        intervalS = n;
        break;
      }
      case "--count": {
        const v = value();
        if (v === undefined || !/^\d+$/.test(v) || Number(v) < 1) {
          process.stderr.write(`Invalid --count "${v ?? ""}" (expected a positive integer)\n${USAGE}`);
          return 2;
        }
        count = Number(v);
        break;
      }
      case "--once":
        count = 1;
        break;
      default:
        process.stderr.write(`Unknown option "${a}"\n${USAGE}`);
        return 2;
    }
  }
  const socketPath = defaultSocketPath({ explicit: socket });
  const client = new HttpControlClient({ socketPath });
  const tty = process.stdout.isTTY === true && count > 1;
  let stop = false;
  let wake: (() => void) | undefined;
  const quit = () => {
    stop = true;
    wake?.();
  };
  process.once("SIGINT", quit);
  const stdin = process.stdin;
  const keys = (k: Buffer) => {
    const s = k.toString();
    if (s === "q" || s === "Q" || s === "\u0003") quit();
  };
  if (tty && stdin.isTTY) {
    stdin.setRawMode(true);
    stdin.on("data", keys);
  }
  try {
    for (let frame = 0; frame < count && !stop; frame++) {
      const [snap, status] = await Promise.all([client.snapshot(), client.status()]);
      const text = formatTop(snap, status, { intervalS });
      process.stdout.write(tty ? `\x1b[H\x1b[2J${text}` : `${frame > 0 ? "\n" : ""}${text}`);
      if (frame + 1 < count && !stop)
        await new Promise<void>((r) => {
          wake = r;
          setTimeout(r, intervalS * 1000).unref();
        });
    }
    return 0;
  } catch (e) {
    const msg = e instanceof ControlConnectError ? e.message : `tvsd refused the request: ${(e as Error).message}`;
    process.stderr.write(`${msg}\n`);
    return 1;
  } finally {
    process.off("SIGINT", quit);
    if (tty && stdin.isTTY) {
      stdin.off("data", keys);
      stdin.setRawMode(false);
      stdin.pause();
    }
  }
}
