// `tvs fwmark`: the packet plane's firewall-mark rules as tvsd applies them (first match wins, in
// the order listed), each with the fwmark service its packets go to, then every fwmark service
// with how many rules feed it, and a warning for each service no rule feeds (its traffic never
// arrives). --json prints GET /v1/fwmark's answer as it is.

import { ApiError, ControlConnectError, HttpControlClient } from "../../control/api/client.ts";
import type { FwmarkView } from "../../control/api/protocol.ts";
import { defaultSocketPath } from "../../control/api/socket-path.ts";
import { readClientArgs } from "./client-args.ts";

const USAGE = "Usage: tvs fwmark [--socket PATH] [--json]\n";

/** "FWM 1" / "FWM 1 IPv6", as ipvsadm -L names an fwmark service. */
function fwmName(id: string): string {
  const m = /^fwmark (\d+) ipv(4|6)$/.exec(id);
  return m ? `FWM ${m[1]}${m[2] === "6" ? " IPv6" : ""}` : id;
}

export function formatFwmark(v: FwmarkView): string {
  const out: string[] = [];
  if (!v.supported) {
    out.push(`Firewall-mark rules: none (${v.note ?? "this data plane does not classify frames"})`);
    if (v.services.length > 0) out.push(`fwmark services: ${v.services.map((s) => fwmName(s.id)).join(", ")}`);
    return `${out.join("\n")}\n`;
  }
  if (v.rules.length === 0) out.push("Firewall-mark rules: none (tvsd --fwmark-rule or --fwmark-rules FILE)");
  else {
    out.push(`Firewall-mark rules (${v.rules.length}, first match wins):`);
    const rows = [
      ["#", "Prot", "Destination", "Ports", "Source", "Mark", "Service", "From"],
      ...v.rules.map((r) => [
        String(r.n),
        r.protocol,
        r.dst,
        r.ports,
        r.src ?? "*",
        String(r.mark),
        r.service === null ? "-" : fwmName(r.service),
        r.origin,
      ]),
    ];
    const widths = rows[0]!.map((_, c) => Math.max(...rows.map((row) => row[c]!.length)));
    for (const row of rows)
      out.push(
        `  ${row
          .map((cell, c) => (c === row.length - 1 ? cell : cell.padEnd(widths[c]!)))
          .join("  ")
          .trimEnd()}`,
      );
    if (v.rules.some((r) => r.service === null))
      out.push("  (Service -: no fwmark service takes the mark; such packets go to an address service or the host)");
  }
  if (v.services.length > 0)
    out.push(
      `fwmark services: ${v.services.map((s) => `${fwmName(s.id)} (${s.rules} rule${s.rules === 1 ? "" : "s"})`).join(", ")}`,
    );
  for (const w of v.warnings) out.push(`Warning: ${w}`);
  return `${out.join("\n")}\n`;
}

export async function run(argv: string[]): Promise<number> {
  const args = readClientArgs(argv, USAGE, 0);
  if ("exit" in args) return args.exit;
  const client = new HttpControlClient({ socketPath: defaultSocketPath({ explicit: args.socket }) });
  try {
    const v = await client.fwmark();
    process.stdout.write(args.json ? `${JSON.stringify(v, null, 2)}\n` : formatFwmark(v));
    return 0;
  } catch (e) {
    const msg =
      e instanceof ControlConnectError
        ? e.message
        : `tvsd refused the fwmark request: ${e instanceof ApiError ? e.message : (e as Error).message}`;
    process.stderr.write(`${msg}\n`);
    return 1;
  }
}
