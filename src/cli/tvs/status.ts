// `tvs status`: what tvsd is doing beyond the table tvsadm shows: which data plane runs, since when,
// the configuration it loaded, health-check states, VRRP instances (state, priorities, master,
// last transition, adverts and keepalived's error counters) and the daemon's notes (forwarding methods the
// plane maps, connection-table fill, open flows, the last reload). --json prints the raw StatusView.

import { ControlConnectError, HttpControlClient } from "../../control/api/client.ts";
import type { StatusView } from "../../control/api/protocol.ts";
import { defaultSocketPath } from "../../control/api/socket-path.ts";
import { readClientArgs } from "./client-args.ts";

const USAGE = "Usage: tvs status [--socket PATH] [--json]\n";

function duration(ms: number): string {
  const s = Math.floor(ms / 1000);
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  const parts = [d ? `${d}d` : "", h ? `${h}h` : "", m ? `${m}m` : "", `${s % 60}s`].filter(Boolean);
  return parts.join(" ");
}

export function formatStatus(v: StatusView, socketPath: string): string {
  const lines = [
    `tvsd pid ${v.pid}, up ${duration(v.uptimeMs)}, socket ${socketPath}`,
    `Data plane: ${v.dataplane}`,
    `Configuration: ${v.config ?? "(none: rules come from tvsadm)"}`,
  ];
  if (v.checks.length === 0) lines.push("Health checks: none");
  else {
    lines.push("Health checks:");
    lines.push(
      `  ${"SERVICE".padEnd(26)} ${"DEST".padEnd(22)} ${"CHECK".padEnd(10)} ${"STATE".padEnd(8)} SINCE    RESULT`,
    );
    for (const c of v.checks) {
      lines.push(
        `  ${c.service.padEnd(26)} ${c.dest.padEnd(22)} ${c.checker.padEnd(10)} ${c.state.padEnd(8)} ${duration(c.sinceChangeMs).padEnd(8)} ${c.lastResult}${c.reason ? ` (${c.reason})` : ""}`,
      );
    }
  }
  if (v.vrrp && v.vrrp.length > 0) {
    lines.push("VRRP:");
    for (const i of v.vrrp) {
      const prio =
        i.effectivePriority === i.configuredPriority
          ? `priority ${i.configuredPriority}`
          : `priority ${i.effectivePriority} (configured ${i.configuredPriority})`;
      lines.push(
        `  ${i.name}: ${i.state} on ${i.interface} vrid ${i.vrid} v${i.version}, ${prio}, master ${i.masterAddress ?? "unknown"}${i.masterPriority !== null && i.state !== "MASTER" ? ` (priority ${i.masterPriority})` : ""}`,
      );
      lines.push(
        `    VIPs ${i.virtualIpaddresses.join(" ")} ${i.vipsOwned ? "held here" : "not held"}; adverts sent ${i.counters.advert_sent}, received ${i.counters.advert_rcvd}; ${i.unicastPeers.length ? `unicast ${i.sourceAddress} -> ${i.unicastPeers.join(" ")}` : `multicast from ${i.sourceAddress}`}`,
      );
      if (i.lastTransition)
        lines.push(
          `    last transition ${i.lastTransition.from} -> ${i.lastTransition.to} at ${i.lastTransition.at}: ${i.lastTransition.reason}`,
        );
      const errs = Object.entries(i.counters).filter(
        ([k, n]) => n > 0 && !["advert_rcvd", "advert_sent", "become_master", "release_master"].includes(k),
      );
      if (errs.length) lines.push(`    counters: ${errs.map(([k, n]) => `${k} ${n}`).join(", ")}`);
      if (i.faults.length) lines.push(`    faults: ${i.faults.join("; ")}`);
    }
  }
  if (v.announce) {
    const a = v.announce;
    lines.push(
      `BGP announcing (BIRD pid ${a.pid ?? "not running"}, socket ${a.socket}): ${a.announced.length > 0 ? a.announced.join(" ") : "nothing announced"}`,
    );
    for (const d of a.decisions) lines.push(`  ${d.vip}: ${d.announce ? "announced" : "withdrawn"} (${d.reason})`);
    if (a.lastError) lines.push(`  last error: ${a.lastError}`);
  }
  if (v.notes.length > 0) {
    lines.push("Notes:");
    for (const n of v.notes) lines.push(`  ${n}`);
  }
  return `${lines.join("\n")}\n`;
}

export async function run(argv: string[]): Promise<number> {
  const args = readClientArgs(argv, USAGE, 0);
  if ("exit" in args) return args.exit;
  const { socket, json } = args;
  const socketPath = defaultSocketPath({ explicit: socket });
  const client = new HttpControlClient({ socketPath });
  try {
    const v = await client.status();
    process.stdout.write(json ? `${JSON.stringify(v, null, 2)}\n` : formatStatus(v, socketPath));
    return 0;
  } catch (e) {
    const msg =
      e instanceof ControlConnectError ? e.message : `tvsd refused the status request: ${(e as Error).message}`;
    process.stderr.write(`${msg}\n`);
    return 1;
  }
}
