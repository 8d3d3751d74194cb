// PING_CHECK: one ICMP echo request, healthy when the echo reply comes back in time. keepalived
// uses an unprivileged ICMP datagram socket; Node has neither that nor raw sockets, so this runs
// the system `ping` (iputils-ping: `ping -n -q -c 1 -W <s> [-I <bindto>] <addr>`) and reads its
// exit status (0 = a reply). The attempt's time limit kills it. When the native addon offers raw
// ICMP, a socket-based echo can replace the child process here without changing the interface.

import { spawn } from "node:child_process";
import { abortReason, type Checker, type CheckResult, elapsedMs } from "../checker.ts";
import type { PingCheckSpec } from "../checker-spec.ts";

/** The ping binary; override with TVS_PING for hosts where it lives elsewhere. */
export const PING_BINARY = process.env.TVS_PING ?? "ping";

export function pingArgs(address: string, timeoutMs: number, bindTo?: string): string[] {
  const args = [
    address.includes(":") ? "-6" : "-4",
    "-n",
    "-q",
    "-c",
    "1",
    "-W",
    String(Math.max(1, Math.ceil(timeoutMs / 1000))),
  ];
  if (bindTo !== undefined) args.push("-I", bindTo);
  args.push(address);
  return args;
}

export function createPingChecker(spec: PingCheckSpec, binary = PING_BINARY): Checker {
  return {
    type: "PING_CHECK",
    check(target, signal): Promise<CheckResult> {
      const start = performance.now();
      const fail = (reason: string): CheckResult => ({ ok: false, reason, latencyMs: elapsedMs(start) });
      if (signal.aborted) return Promise.resolve(fail(abortReason(signal)));
      return new Promise((resolve) => {
        const child = spawn(binary, pingArgs(target.address, spec.connectTimeoutMs, target.bindTo), {
          stdio: "ignore",
          env: { ...process.env, LC_ALL: "C" },
        });
        let done = false;
        const settle = (r: CheckResult) => {
          if (done) return;
          done = true;
          signal.removeEventListener("abort", onAbort);
          resolve(r);
        };
        const onAbort = () => {
          child.kill("SIGKILL");
          settle(fail(abortReason(signal)));
        };
        signal.addEventListener("abort", onAbort, { once: true });
        child.once("error", (e) => settle(fail(`Cannot run ${binary}: ${e.message}`)));
        child.once("exit", (code) => {
          if (code === 0) settle({ ok: true, reason: "Echo reply", latencyMs: elapsedMs(start) });
          else if (code === 1) settle(fail("No echo reply"));
          else settle(fail(`${binary} failed (exit ${code})`));
        });
      });
    },
  };
}
