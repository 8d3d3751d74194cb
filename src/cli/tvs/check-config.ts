// `tvs check-config [--json] [--format keepalived|ldirectord] [--local-addrs A[,B...]] FILE`: reads
// a keepalived.conf or ldirectord.cf like `keepalived -t` does and prints every diagnostic as
// "FILE:LINE:COL: error|warning: message". Exit 0 without errors (warnings allowed), 1 with
// errors, 2 on usage errors. --json prints the parsed DirectorConfig on stdout. --local-addrs
// names tvsd's own --local-addrs so what tvsd checks against them is checked too (a tvs_announce
// backup_addr must not be one of them).

import { type Diagnostic, formatDiagnostic } from "../../config/diagnostics.ts";
import type { ConfigFormat } from "../../config/director-config.ts";
import { ownBackupAddrs } from "../../config/keepalived/announce.ts";
import { checkVrrpInterfaces } from "../../config/keepalived/vrrp.ts";
import { loadConfig } from "../../config/load.ts";
import { parseIp } from "../../config/values.ts";

const USAGE = "Usage: tvs check-config [--json] [--format keepalived|ldirectord] [--local-addrs A[,B...]] FILE\n";

export async function run(argv: string[]): Promise<number> {
  let json = false;
  let format: ConfigFormat | undefined;
  let file: string | undefined;
  const localAddrs: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === "--json") json = true;
    else if (a === "-h" || a === "--help") {
      process.stdout.write(USAGE);
      return 0;
    } else if (a === "--format" || a.startsWith("--format=")) {
      const v = a === "--format" ? argv[++i] : a.slice("--format=".length);
      if (v !== "keepalived" && v !== "ldirectord") {
        process.stderr.write(`Invalid format "${v ?? ""}" (expected keepalived or ldirectord)\n${USAGE}`);
        return 2;
      }
      format = v;
    } else if (a === "--local-addrs" || a.startsWith("--local-addrs=")) {
      const v = a === "--local-addrs" ? argv[++i] : a.slice("--local-addrs=".length);
      for (const part of (v ?? "").split(",")) {
        const ip = parseIp(part.trim());
        if (ip === undefined) {
          process.stderr.write(`Invalid --local-addrs address "${part}" in "${v ?? ""}"\n${USAGE}`);
          return 2;
        }
        localAddrs.push(ip);
      }
    } else if (a.startsWith("-") && a !== "-") {
      process.stderr.write(`Unknown option "${a}"\n${USAGE}`);
      return 2;
    } else if (file === undefined) file = a;
    else {
      process.stderr.write(`Unexpected argument "${a}"\n${USAGE}`);
      return 2;
    }
  }
  if (file === undefined) {
    process.stderr.write(`Missing configuration file\n${USAGE}`);
    return 2;
  }
  let result = loadConfig(file, format);
  // What depends on this machine (tvsd checks the same when it starts or reloads).
  if ("config" in result && result.config.vrrp.instances.length > 0) {
    const local = checkVrrpInterfaces(result.config.vrrp).map(
      (p): Diagnostic => ({ severity: "error", ...p.origin, message: p.message }),
    );
    if (local.length > 0) result = { diagnostics: [...result.diagnostics, ...local] };
  }
  if ("config" in result && result.config.announce && localAddrs.length > 0) {
    const own = ownBackupAddrs(result.config.announce, localAddrs).map(
      (p): Diagnostic => ({ severity: "error", ...p.origin, message: p.message }),
    );
    if (own.length > 0) result = { diagnostics: [...result.diagnostics, ...own] };
  }
  for (const d of result.diagnostics) process.stderr.write(`${formatDiagnostic(d)}\n`);
  if (!("config" in result)) {
    const n = result.diagnostics.filter((d) => d.severity === "error").length;
    process.stderr.write(`${file}: ${n} error${n === 1 ? "" : "s"}, configuration refused\n`);
    return 1;
  }
  if (json) process.stdout.write(`${JSON.stringify(result.config, null, 2)}\n`);
  else {
    const c = result.config;
    const dests = c.desired.services.reduce((n, s) => n + s.dests.length, 0);
    process.stdout.write(
      `${file}: ${c.format} configuration OK: ${c.desired.services.length} virtual service(s), ${dests} real server(s), ` +
        `${c.vrrp.instances.length} vrrp instance(s), ${c.fwmarkRules ? `${c.fwmarkRules.length} fwmark rule(s), ` : ""}${c.warnings.length} warning(s)\n`,
    );
  }
  return 0;
}
