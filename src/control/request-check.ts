// Shape checks for control API bodies before anything touches the tables: a POST /v1/exec body must
// be an ExecRequest with every field of the right type, or the daemon answers 400 with a message
// naming the bad field. Value ranges (addresses, ports, weights) are core's to judge; this file only
// makes sure core receives well-typed data, so a malformed request can never reach the state.

import { DEFAULT_TUN, type DestSpec, type FwdMethod, type TunType } from "../core/dest.ts";
import { CoreError } from "../core/errors.ts";
import type { ServiceKey, ServiceOptions } from "../core/service.ts";
import type { ExecRequest, SyncDaemonSpec, Timeouts } from "./api/protocol.ts";

type Obj = Record<string, unknown>;

function bad(where: string, what: string, value: unknown): never {
  let shown: string;
  try {
    shown = JSON.stringify(value) ?? String(value);
  } catch {
    shown = String(value);
  }
  if (shown.length > 80) shown = `${shown.slice(0, 77)}...`;
  throw new CoreError("EINVAL", "request", `Invalid ${where}: expected ${what}, got ${shown}`);
}

function obj(v: unknown, where: string): Obj {
  if (typeof v !== "object" || v === null || Array.isArray(v)) bad(where, "an object", v);
  return v as Obj;
}

function str(o: Obj, k: string, where: string): string {
  const v = o[k];
  if (typeof v !== "string") bad(`${where}.${k}`, "a string", v);
  return v;
}

function num(o: Obj, k: string, where: string): number {
  const v = o[k];
  if (typeof v !== "number" || !Number.isFinite(v)) bad(`${where}.${k}`, "a number", v);
  return v;
}

function bool(o: Obj, k: string, where: string): boolean {
  const v = o[k];
  if (typeof v !== "boolean") bad(`${where}.${k}`, "true or false", v);
  return v;
}

function oneOf<T extends string>(o: Obj, k: string, where: string, allowed: readonly T[]): T {
  const v = o[k];
  if (typeof v !== "string" || !(allowed as readonly string[]).includes(v)) bad(`${where}.${k}`, allowed.join("|"), v);
  return v as T;
}

export function checkServiceKey(v: unknown, where = "key"): ServiceKey {
  const o = obj(v, where);
  const kind = oneOf(o, "kind", where, ["vip", "fwmark"] as const);
  if (kind === "fwmark") {
    const family = num(o, "family", where);
    if (family !== 4 && family !== 6) bad(`${where}.family`, "4 or 6", family);
    return { kind, fwmark: num(o, "fwmark", where), family };
  }
  return {
    kind,
    protocol: oneOf(o, "protocol", where, ["tcp", "udp", "sctp"] as const),
    addr: str(o, "addr", where),
    port: num(o, "port", where),
  };
}

export function checkServiceOptions(v: unknown, where = "options"): ServiceOptions {
  const o = obj(v, where);
  const flags = o.schedFlags;
  if (!Array.isArray(flags) || flags.some((f) => typeof f !== "string"))
    bad(`${where}.schedFlags`, "an array of strings", flags);
  return {
    scheduler: str(o, "scheduler", where),
    schedFlags: flags as string[],
    persistent: bool(o, "persistent", where),
    timeout: num(o, "timeout", where),
    netmask: num(o, "netmask", where),
    ops: bool(o, "ops", where),
    pe: str(o, "pe", where),
  };
}

const FWD: readonly FwdMethod[] = ["masq", "local", "tunnel", "droute", "fullnat"];
const TUN: readonly TunType[] = ["ipip", "gue", "gre"];

export function checkDestSpec(v: unknown, where = "dest"): DestSpec {
  const o = obj(v, where);
  let tun = { ...DEFAULT_TUN };
  if (o.tun !== undefined) {
    const t = obj(o.tun, `${where}.tun`);
    tun = {
      type: oneOf(t, "type", `${where}.tun`, TUN),
      port: num(t, "port", `${where}.tun`),
      nocsum: bool(t, "nocsum", `${where}.tun`),
      csum: bool(t, "csum", `${where}.tun`),
      remcsum: bool(t, "remcsum", `${where}.tun`),
    };
  }
  return {
    addr: str(o, "addr", where),
    port: num(o, "port", where),
    fwd: oneOf(o, "fwd", where, FWD),
    weight: num(o, "weight", where),
    uThreshold: num(o, "uThreshold", where),
    lThreshold: num(o, "lThreshold", where),
    tun,
  };
}

function checkTimeouts(v: unknown): Timeouts {
  const o = obj(v, "timeouts");
  return { tcp: num(o, "tcp", "timeouts"), tcpfin: num(o, "tcpfin", "timeouts"), udp: num(o, "udp", "timeouts") };
}

function checkDaemon(v: unknown): SyncDaemonSpec {
  const o = obj(v, "daemon");
  return {
    state: oneOf(o, "state", "daemon", ["master", "backup"] as const),
    mcastIfn: str(o, "mcastIfn", "daemon"),
    syncId: num(o, "syncId", "daemon"),
    syncMaxLen: num(o, "syncMaxLen", "daemon"),
    mcastGroup: str(o, "mcastGroup", "daemon"),
    mcastPort: num(o, "mcastPort", "daemon"),
    mcastTtl: num(o, "mcastTtl", "daemon"),
  };
}

const OPS = [
  "add-service",
  "edit-service",
  "del-service",
  "flush",
  "add-dest",
  "edit-dest",
  "del-dest",
  "zero",
  "set-timeout",
  "start-daemon",
  "stop-daemon",
  "batch",
] as const;

/** Check a POST /v1/exec body; throws CoreError EINVAL (op "request") naming the bad field. */
export function checkExecRequest(v: unknown, where = "request", depth = 0): ExecRequest {
  const o = obj(v, where);
  const op = oneOf(o, "op", where, OPS);
  switch (op) {
    case "add-service":
    case "edit-service":
      return {
        op,
        key: checkServiceKey(o.key, `${where}.key`),
        options: checkServiceOptions(o.options, `${where}.options`),
      };
    case "del-service":
      return { op, key: checkServiceKey(o.key, `${where}.key`) };
    case "flush":
      return { op };
    case "add-dest":
    case "edit-dest":
      return { op, key: checkServiceKey(o.key, `${where}.key`), dest: checkDestSpec(o.dest, `${where}.dest`) };
    case "del-dest":
      return {
        op,
        key: checkServiceKey(o.key, `${where}.key`),
        addr: str(o, "addr", where),
        port: num(o, "port", where),
      };
    case "zero":
      return o.key === undefined ? { op } : { op, key: checkServiceKey(o.key, `${where}.key`) };
    case "set-timeout":
      return { op, timeouts: checkTimeouts(o.timeouts) };
    case "start-daemon":
      return { op, daemon: checkDaemon(o.daemon) };
    case "stop-daemon":
      return { op, state: oneOf(o, "state", where, ["master", "backup"] as const) };
    case "batch": {
      if (depth > 0) bad(`${where}.op`, "no nested batch", op);
      const reqs = o.requests;
      if (!Array.isArray(reqs)) bad(`${where}.requests`, "an array", reqs);
      return { op, requests: reqs.map((r, i) => checkExecRequest(r, `${where}.requests[${i}]`, depth + 1)) };
    }
  }
}
