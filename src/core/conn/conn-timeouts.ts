// Timeouts per protocol state (the kernel's per-protocol timeout tables) in milliseconds, and
// ipvsadm --set / --timeout's view of them: TCP ESTABLISHED, TCP FIN_WAIT and UDP in seconds.

import { CoreError, type CoreOp } from "../errors.ts";
import { checkTimeoutS } from "./conn-args.ts";
import { SCTP_DEFAULT_TIMEOUTS } from "./sctp-states.ts";
import { TCP_DEFAULT_TIMEOUTS, TCP_S_ESTABLISHED, TCP_S_FIN_WAIT } from "./tcp-states.ts";
import { UDP_DEFAULT_TIMEOUTS, UDP_S_NORMAL } from "./udp-states.ts";

/** ipvsadm --set / --timeout: seconds; 0 in setTimeouts means "keep the current value". */
export interface Timeouts {
  /** TCP ESTABLISHED timeout. */
  tcp: number;
  /** TCP FIN_WAIT timeout. */
  tcpfin: number;
  /** UDP timeout. */
  udp: number;
}

const PROTO_TCP = 0;
const PROTO_UDP = 1;

export class StateTimeouts {
  /** Timeouts in ms per state, per protocol code (tcp, udp, sctp). */
  readonly #ms: number[][] = [
    TCP_DEFAULT_TIMEOUTS.map((s) => s * 1000),
    UDP_DEFAULT_TIMEOUTS.map((s) => s * 1000),
    SCTP_DEFAULT_TIMEOUTS.map((s) => s * 1000),
  ];

  /** Timeout in ms of `state` of protocol code `p`, or undefined for a state that does not exist. */
  ms(p: number, state: number): number | undefined {
    return this.#ms[p]?.[state];
  }

  /** UDP's one timeout (every UDP packet re-reads it). */
  get udpMs(): number {
    return this.ms(PROTO_UDP, UDP_S_NORMAL) ?? 0;
  }

  seconds(): Timeouts {
    return {
      tcp: (this.ms(PROTO_TCP, TCP_S_ESTABLISHED) ?? 0) / 1000,
      tcpfin: (this.ms(PROTO_TCP, TCP_S_FIN_WAIT) ?? 0) / 1000,
      udp: this.udpMs / 1000,
    };
  }

  /** ipvsadm --set: each value in seconds, 0 keeps the current one; all checked before any is set. */
  set(t: Timeouts): void {
    const op: CoreOp = "set-timeout";
    if (t === null || typeof t !== "object") throw new CoreError("EINVAL", op, `Invalid timeouts "${String(t)}"`);
    for (const k of ["tcp", "tcpfin", "udp"] as const) checkTimeoutS(t[k], `${k} timeout`, op);
    const tcp = this.#ms[PROTO_TCP];
    const udp = this.#ms[PROTO_UDP];
    if (tcp === undefined || udp === undefined) return;
    if (t.tcp !== 0) tcp[TCP_S_ESTABLISHED] = t.tcp * 1000;
    if (t.tcpfin !== 0) tcp[TCP_S_FIN_WAIT] = t.tcpfin * 1000;
    if (t.udp !== 0) udp[UDP_S_NORMAL] = t.udp * 1000;
  }
}
