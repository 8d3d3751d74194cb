// The kernel's TCP connection states for IPVS (ip_vs_proto_tcp.c): numbering, names, default
// timeouts, and the packet-driven transition table indexed by direction and by the one flag the
// kernel picks from a segment (rst, then syn, then fin, then ack).

export const TCP_S_NONE = 0;
export const TCP_S_ESTABLISHED = 1;
export const TCP_S_SYN_SENT = 2;
export const TCP_S_SYN_RECV = 3;
export const TCP_S_FIN_WAIT = 4;
export const TCP_S_TIME_WAIT = 5;
export const TCP_S_CLOSE = 6;
export const TCP_S_CLOSE_WAIT = 7;
export const TCP_S_LAST_ACK = 8;
export const TCP_S_LISTEN = 9;
export const TCP_S_SYNACK = 10;
/** Number of TCP states (the kernel's IP_VS_TCP_S_LAST). */
export const TCP_S_COUNT = 11;

export const TCP_STATE_NAMES: readonly string[] = [
  "NONE",
  "ESTABLISHED",
  "SYN_SENT",
  "SYN_RECV",
  "FIN_WAIT",
  "TIME_WAIT",
  "CLOSE",
  "CLOSE_WAIT",
  "LAST_ACK",
  "LISTEN",
  "SYNACK",
];

/** Default timeouts in seconds, per state (tcp_timeouts[]). */
export const TCP_DEFAULT_TIMEOUTS: readonly number[] = [2, 900, 120, 60, 120, 120, 10, 60, 30, 120, 120];

/** TCP header flag bits as they sit in the header's flags byte. */
export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_ACK = 0x10;

/**
 * Which direction a packet travelled: "in" client → director, "out" real server → client through
 * the director (NAT replies), "in-only" client → director on a connection whose replies bypass
 * the director (DR, TUN: the kernel's IP_VS_DIR_INPUT_ONLY).
 */
export type Direction = "in" | "out" | "in-only";

/** Row group offsets, as the kernel's TCP_DIR_INPUT / OUTPUT / INPUT_ONLY. */
export const TCP_DIR_INPUT = 0;
export const TCP_DIR_OUTPUT = 4;
export const TCP_DIR_INPUT_ONLY = 8;

/**
 * The row within a direction the kernel uses for a segment (tcp_state_idx): rst beats syn beats
 * fin beats ack; a segment with none of them (-1) moves the connection to CLOSE.
 */
export function tcpFlagIndex(flags: number): number {
  if (flags & TCP_RST) return 3;
  if (flags & TCP_SYN) return 0;
  if (flags & TCP_FIN) return 1;
  if (flags & TCP_ACK) return 2;
  return -1;
}

const ES = TCP_S_ESTABLISHED;
const SS = TCP_S_SYN_SENT;
const SR = TCP_S_SYN_RECV;
const FW = TCP_S_FIN_WAIT;
const TW = TCP_S_TIME_WAIT;
const CL = TCP_S_CLOSE;
const CW = TCP_S_CLOSE_WAIT;
const LA = TCP_S_LAST_ACK;
const LI = TCP_S_LISTEN;

/**
 * next = TCP_STATES[dirOffset + flagIndex][current]. Twelve rows: syn, fin, ack, rst for INPUT,
 * OUTPUT and INPUT_ONLY; eleven columns, one per current state in numbering order
 * (NONE ESTABLISHED SYN_SENT SYN_RECV FIN_WAIT TIME_WAIT CLOSE CLOSE_WAIT LAST_ACK LISTEN SYNACK).
 * Values are the current kernel's normal table (not the secure_tcp one).
 */
export const TCP_STATES: readonly (readonly number[])[] = [
  // INPUT
  /* syn */ [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR],
  /* fin */ [CL, CW, SS, TW, TW, TW, CL, CW, LA, LI, TW],
  /* ack */ [ES, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
  /* rst */ [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, SR],
  // OUTPUT
  /* syn */ [SS, ES, SS, SR, SS, SS, SS, SS, SS, LI, SR],
  /* fin */ [TW, FW, SS, TW, FW, TW, CL, TW, LA, LI, TW],
  /* ack */ [ES, ES, SS, ES, FW, TW, CL, CW, LA, ES, ES],
  /* rst */ [CL, CL, SS, CL, CL, TW, CL, CL, CL, CL, CL],
  // INPUT_ONLY
  /* syn */ [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR],
  /* fin */ [CL, FW, SS, TW, FW, TW, CL, CW, LA, LI, TW],
  /* ack */ [ES, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
  /* rst */ [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, CL],
];

/**
 * The table in force while secure_tcp is on (defense.ts). tvs's own, with the documented intent
 * of the kernel's: on a connection whose replies pass the director (INPUT rows: NAT, FULLNAT) a
 * client's ACK leaves SYN_RECV as it is, so only a handshake the real server answered makes an
 * entry ESTABLISHED. A spoofed client that never sees the
 * SYN-ACK cannot complete it by guessing, and its entry keeps SYN_RECV's short timeout.
 * The real server's SYN-ACK (OUTPUT syn) moves SYN_RECV to SYNACK; the client's ACK then moves
 * SYNACK to ESTABLISHED. INPUT_ONLY rows (DR, TUN: replies never seen) are the normal ones.
 */
export const TCP_STATES_SECURE: readonly (readonly number[])[] = TCP_STATES.map((row, i) => {
  const r = [...row];
  if (i === TCP_DIR_INPUT + 2) r[SR] = SR; // INPUT ack in SYN_RECV: stays until the server answered
  if (i === TCP_DIR_OUTPUT + 0) r[SR] = TCP_S_SYNACK; // OUTPUT syn (the SYN-ACK) in SYN_RECV
  return r;
});

/**
 * The next state for a segment, given the row group offset the kernel would use (after the
 * NOOUTPUT adjustment) and the segment's flags; `secure` picks the secure_tcp table.
 */
export function tcpNextState(dirOffset: number, current: number, flags: number, secure = false): number {
  const idx = tcpFlagIndex(flags);
  if (idx < 0) return TCP_S_CLOSE;
  return (secure ? TCP_STATES_SECURE : TCP_STATES)[dirOffset + idx]?.[current] ?? TCP_S_CLOSE;
}
