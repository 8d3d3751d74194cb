// Keeps the director's own kernel away from traffic the packet plane handles. The plane receives
// frames on an ETH_P_ALL packet socket, which sees them before the netdev ingress hook; an nft
// netdev ingress rule then drops them for the kernel, so it neither answers nor forwards a
// duplicate. Dropped for the kernel: IP traffic to VIPs and FULLNAT local addresses, and NAT
// real servers' replies (traffic from a masq destination to anything but the director's own
// address, so health-check replies still reach the host), and what the firewall-mark rules send
// to a fwmark service (the rules mirrored in order: a rule whose mark no service takes accepts,
// so first match wins for the host as it does in the plane). One table per interface,
// "netdev tvs_<ifname>", replaced atomically on every change and deleted on stop.

import { spawnSync } from "node:child_process";
import { type FwmarkRule, formatPrefix } from "../../core/fwmark/rule.ts";

export interface GuardSpec {
  ifname: string;
  /** VIPs and local addresses (IPv4 and IPv6 text). */
  owned: readonly string[];
  /** Addresses of masq destinations (replies from them are ours). */
  natDests: readonly string[];
  /** The director's own addresses (never dropped as reply destinations). */
  self: readonly string[];
  /** Firewall-mark rules in order, each with whether the plane takes what it matches (coverage.ts guardRules). */
  marked?: readonly { rule: FwmarkRule; taken: boolean }[];
}

/** One firewall-mark rule as an nft rule: drop what the plane takes, accept what it leaves to the host. */
export function guardMarkRule(rule: FwmarkRule, taken: boolean): string {
  const ip = rule.dst.family === 4 ? "ip" : "ip6";
  const parts = [`${ip} daddr ${formatPrefix(rule.dst)}`];
  if (rule.src) parts.push(`${ip} saddr ${formatPrefix(rule.src)}`);
  parts.push(rule.protocol === "any" ? "meta l4proto { tcp, udp, sctp }" : `meta l4proto ${rule.protocol}`);
  if (rule.ports.length > 0)
    parts.push(`th dport { ${rule.ports.map(([lo, hi]) => (lo === hi ? `${lo}` : `${lo}-${hi}`)).join(", ")} }`);
  parts.push(taken ? "drop" : "accept");
  return parts.join(" ");
}

export function guardTableName(ifname: string): string {
  return `tvs_${ifname.replace(/[^A-Za-z0-9_]/g, "_")}`;
}

/** The nft script for a guard (exported for tests). */
export function guardScript(g: GuardSpec): string {
  const t = guardTableName(g.ifname);
  const v4 = (xs: readonly string[]) => xs.filter((a) => !a.includes(":"));
  const v6 = (xs: readonly string[]) => xs.filter((a) => a.includes(":"));
  const set = (xs: string[]) => `{ ${xs.join(", ")} }`;
  const rules: string[] = [];
  if (v4(g.owned).length) rules.push(`ip daddr ${set(v4(g.owned))} drop`);
  if (v6(g.owned).length) rules.push(`ip6 daddr ${set(v6(g.owned))} drop`);
  if (v4(g.natDests).length)
    rules.push(
      v4(g.self).length
        ? `ip saddr ${set(v4(g.natDests))} ip daddr != ${set(v4(g.self))} drop`
        : `ip saddr ${set(v4(g.natDests))} drop`,
    );
  if (v6(g.natDests).length)
    rules.push(
      v6(g.self).length
        ? `ip6 saddr ${set(v6(g.natDests))} ip6 daddr != ${set(v6(g.self))} drop`
        : `ip6 saddr ${set(v6(g.natDests))} drop`,
    );
  for (const m of g.marked ?? []) rules.push(guardMarkRule(m.rule, m.taken));
  return [
    `add table netdev ${t}`,
    `delete table netdev ${t}`,
    `table netdev ${t} {`,
    "  chain ingress {",
    `    type filter hook ingress device "${g.ifname}" priority -500; policy accept;`,
    ...rules.map((r) => `    ${r}`),
    "  }",
    "}",
    "",
  ].join("\n");
}

function nft(script: string): string | undefined {
  const r = spawnSync("nft", ["-f", "-"], { input: script, encoding: "utf8" });
  if (r.error) return `nft could not run (${r.error.message}); install nftables`;
  if (r.status !== 0) return `nft failed: ${r.stderr.trim()}`;
  return undefined;
}

/** Install or replace the guard; returns an error message instead of throwing. */
export function installGuard(g: GuardSpec): string | undefined {
  return nft(guardScript(g));
}

export function removeGuard(ifname: string): string | undefined {
  const t = guardTableName(ifname);
  return nft(`add table netdev ${t}\ndelete table netdev ${t}\n`);
}
