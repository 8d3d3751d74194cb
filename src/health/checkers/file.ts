// FILE_CHECK: read a number from a file, keepalived's track_file semantics. The first 127 bytes
// are parsed like C's strtol with base 0 (leading blanks, a sign, 0x hex, 0 octal; no digits = 0);
// a missing or empty file reads as 0; a number outside 32 bits is ignored and the previous verdict
// stands. With weight 0, 0 means up and anything else down (reverse swaps them); otherwise the
// real server stays up with offset number*weight (negated with reverse) added to its configured
// weight, and an offset at or below -2^31 means down. keepalived watches the file with inotify;
// here it is read every delay_loop.

import { open } from "node:fs/promises";
import { type Checker, type CheckResult, elapsedMs } from "../checker.ts";
import type { FileCheckSpec } from "../checker-spec.ts";

const INT32_MIN = -2147483648;
const INT32_MAX = 2147483647;

/** C strtol(text, NULL, 0) for the leading number of `text`; 0 when there are no digits. */
export function strtol0(text: string): number {
  const m = /^[ \t\n\v\f\r]*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)/.exec(text);
  if (!m) return 0;
  const neg = m[1] === "-";
  const digits = m[2] as string;
  let v: number;
  if (/^0[xX]/.test(digits)) v = Number.parseInt(digits.slice(2), 16);
  else if (digits.length > 1 && digits[0] === "0") v = Number.parseInt(digits, 8);
  else v = Number.parseInt(digits, 10);
  return neg ? -v : v;
}

async function readHead(path: string): Promise<string> {
  let fh: Awaited<ReturnType<typeof open>> | undefined;
  try {
    fh = await open(path, "r");
    const buf = Buffer.alloc(127);
    const { bytesRead } = await fh.read(buf, 0, 127, 0);
    return buf.subarray(0, bytesRead).toString("latin1");
  } catch {
    return "";
  } finally {
    await fh?.close();
  }
}

/** The verdict for a file value under a spec's weight and reverse. */
export function fileVerdict(value: number, weight: number, reverse: boolean): { ok: boolean; offset?: number } {
  if (weight === 0) return { ok: reverse ? value !== 0 : value === 0 };
  const raw = value * weight * (reverse ? -1 : 1);
  const offset = Math.max(INT32_MIN, Math.min(INT32_MAX, raw));
  if (offset <= INT32_MIN) return { ok: false };
  return { ok: true, offset };
}

export function createFileChecker(spec: FileCheckSpec): Checker {
  let last: number | undefined;
  return {
    type: "FILE_CHECK",
    async check(): Promise<CheckResult> {
      const start = performance.now();
      let value = strtol0(await readHead(spec.file));
      if (value < INT32_MIN || value > INT32_MAX + 1) value = last ?? 0;
      last = value;
      const v = fileVerdict(value, spec.weight, spec.reverse);
      const r: CheckResult = {
        ok: v.ok,
        reason: `File ${spec.file} reads ${value}${v.ok ? "" : " (fault)"}`,
        latencyMs: elapsedMs(start),
      };
      if (v.offset !== undefined && v.offset !== 0) r.weightOffset = v.offset;
      return r;
    },
  };
}
