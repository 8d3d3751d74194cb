// The kernel's IPVS sysctls that tvs honours, by their kernel names (net.ipv4.vs.NAME): which
// exist, their ranges and defaults, and how a "NAME=VALUE" text is read. ConnTable.sysctl and
// setSysctl read and write them; tvsd's --sysctl, the control API and `tvs sysctl` all go through
// here, so every surface accepts and refuses the same things.

import { CoreError } from "../errors.ts";

export const SYSCTL_NAMES = [
  "amemthresh",
  "am_droprate",
  "drop_entry",
  "drop_packet",
  "secure_tcp",
  "conn_reuse_mode",
  "expire_nodest_conn",
  "expire_quiescent_template",
  "sloppy_tcp",
  "sloppy_sctp",
  "synproxy",
  "stateless_syn",
] as const;

export type SysctlName = (typeof SYSCTL_NAMES)[number];
export type Sysctls = Record<SysctlName, number>;

/** Inclusive range and default of each. */
export const SYSCTL_SPEC: Readonly<Record<SysctlName, { min: number; max: number; def: number; doc: string }>> = {
  amemthresh: { min: 0, max: 0x7fffffff, def: 1024, doc: "free table entries below which memory is low" },
  am_droprate: { min: 1, max: 0x7fffffff, def: 10, doc: "drop_packet=3 drops one new connection in this many" },
  drop_entry: {
    min: 0,
    max: 3,
    def: 0,
    doc: "reclaim half-open and finished entries each second (0 off, 1/2 auto, 3 on)",
  },
  drop_packet: { min: 0, max: 3, def: 0, doc: "drop a share of new connections (0 off, 1/2 auto, 3 on)" },
  secure_tcp: { min: 0, max: 3, def: 0, doc: "secure TCP state table (0 off, 1/2 auto, 3 on)" },
  conn_reuse_mode: {
    min: 0,
    max: 3,
    def: 1,
    doc: "reschedule a SYN on a finished entry (bit 1; bit 2 also DR's FIN_WAIT)",
  },
  expire_nodest_conn: { min: 0, max: 1, def: 0, doc: "drop entries of removed real servers" },
  expire_quiescent_template: { min: 0, max: 1, def: 0, doc: "ignore templates of weight-0 real servers" },
  sloppy_tcp: { min: 0, max: 1, def: 0, doc: "schedule any TCP packet without an entry, not only a SYN" },
  sloppy_sctp: { min: 0, max: 1, def: 0, doc: "schedule any SCTP packet without an entry, not only INIT" },
  synproxy: {
    min: 0,
    max: 1,
    def: 0,
    doc: "tvs's own: answer SYNs to NAT/FULLNAT services with SYN cookies, no entry until the ACK",
  },
  stateless_syn: {
    min: 0,
    max: 1,
    def: 0,
    doc: "tvs's own: forward SYNs to DR services scheduled by mh/sh without an entry; the ACK makes it",
  },
};

export function isSysctlName(name: string): name is SysctlName {
  return (SYSCTL_NAMES as readonly string[]).includes(name);
}

/** The kernel name for a name as typed (net.ipv4.vs.NAME and dashes accepted). */
export function checkSysctlName(name: string, where: string): SysctlName {
  const n = name.replace(/^net\.ipv4\.vs\./, "").replaceAll("-", "_");
  if (!isSysctlName(n))
    throw new CoreError("EINVAL", "conn", `${where}: unknown sysctl "${name}" (known: ${SYSCTL_NAMES.join(", ")})`);
  return n;
}

/** Check a name and a value; returns the kernel name. */
export function checkSysctl(name: string, value: unknown, where: string): { name: SysctlName; value: number } {
  const n = checkSysctlName(name, where);
  const v = typeof value === "string" && /^-?\d+$/.test(value.trim()) ? Number(value.trim()) : value;
  const s = SYSCTL_SPEC[n];
  if (typeof v !== "number" || !Number.isInteger(v) || v < s.min || v > s.max)
    throw new CoreError(
      "ERANGE",
      "conn",
      `${where}: sysctl ${n} "${String(value)}" is not an integer in ${s.min}..${s.max}`,
    );
  return { name: n, value: v };
}

/** Read "NAME=VALUE". */
export function parseSysctlAssignment(text: string, where: string): { name: SysctlName; value: number } {
  const eq = text.indexOf("=");
  if (eq <= 0) throw new CoreError("EINVAL", "conn", `${where}: "${text}" is not NAME=VALUE`);
  return checkSysctl(text.slice(0, eq).trim(), text.slice(eq + 1), where);
}
