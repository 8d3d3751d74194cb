// Argument checks for the connection table's entry points (schedule, the text lookups, the
// state setters, sync ingest, --set). Each names the argument and the operation, with the
// CoreError code tvsadm and the control API map to ipvsadm's words.

import { CoreError, type CoreOp } from "../errors.ts";
import type { Protocol } from "../sched/types.ts";
import type { Direction } from "./tcp-states.ts";

/** Largest timeout in seconds ipvsadm --set accepts (the kernel's INT_MAX / HZ with HZ = 1000). */
export const MAX_TIMEOUT_S = Math.floor(0x7fffffff / 1000);

export function isPort(v: unknown): v is number {
  return typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= 0xffff;
}

export function checkProtocol(p: unknown, op: CoreOp): Protocol {
  if (p === "tcp" || p === "udp" || p === "sctp") return p;
  throw new CoreError("EINVAL", op, `Invalid protocol "${String(p)}"`);
}

export function checkPort(v: unknown, what: string, op: CoreOp): number {
  if (!isPort(v)) throw new CoreError("EINVAL", op, `Invalid ${what} "${String(v)}"`);
  return v;
}

export function checkAddr(v: unknown, what: string, op: CoreOp): string {
  if (typeof v !== "string" || v.length === 0) throw new CoreError("EINVAL", op, `Invalid ${what} "${String(v)}"`);
  return v;
}

export function checkNow(now: unknown, op: CoreOp): number {
  if (typeof now !== "number" || !Number.isFinite(now))
    throw new CoreError("EINVAL", op, `Invalid time "${String(now)}"`);
  return now;
}

export function checkFwmark(v: unknown, op: CoreOp): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > 0xffffffff)
    throw new CoreError("EINVAL", op, `Invalid firewall mark "${String(v)}"`);
  return v;
}

export function checkDirection(dir: unknown, op: CoreOp): Direction {
  if (dir !== "in" && dir !== "out" && dir !== "in-only")
    throw new CoreError("EINVAL", op, `Invalid direction "${String(dir)}"`);
  return dir;
}

/** An integer in lo..hi (a TCP flags byte, an SCTP chunk type, a state number). */
export function checkByte(v: number, lo: number, hi: number, what: string, op: CoreOp): number {
  if (!Number.isInteger(v) || v < lo || v > hi) throw new CoreError("EINVAL", op, `Invalid ${what} "${v}"`);
  return v;
}

export function checkTimeoutS(v: unknown, what: string, op: CoreOp): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > MAX_TIMEOUT_S)
    throw new CoreError("EINVAL", op, `Invalid ${what} "${String(v)}"`);
  return v;
}
