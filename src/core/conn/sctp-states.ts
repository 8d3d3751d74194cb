// SCTP association states for IPVS (ip_vs_proto_sctp.c): numbering, names as ipvsadm -c shows
// them, the kernel's default timeouts, and the packet-driven transition table indexed by
// direction and by the event the first chunk of a packet stands for.

export const SCTP_S_NONE = 0;
export const SCTP_S_INIT1 = 1;
export const SCTP_S_INIT = 2;
export const SCTP_S_COOKIE_SENT = 3;
export const SCTP_S_COOKIE_REPLIED = 4;
export const SCTP_S_COOKIE_WAIT = 5;
export const SCTP_S_COOKIE = 6;
export const SCTP_S_COOKIE_ECHOED = 7;
export const SCTP_S_ESTABLISHED = 8;
export const SCTP_S_SHUTDOWN_SENT = 9;
export const SCTP_S_SHUTDOWN_RECEIVED = 10;
export const SCTP_S_SHUTDOWN_ACK_SENT = 11;
export const SCTP_S_REJECTED = 12;
export const SCTP_S_CLOSED = 13;
export const SCTP_S_COUNT = 14;

export const SCTP_STATE_NAMES: readonly string[] = [
  "NONE",
  "INIT1",
  "INIT",
  "C-SENT",
  "C-REPLIED",
  "C-WAIT",
  "COOKIE",
  "C-ECHOED",
  "ESTABLISHED",
  "S-SENT",
  "S-RECEIVED",
  "S-ACK-SENT",
  "REJECTED",
  "CLOSED",
];

/** The kernel's IP_VS_SCTP_MAX_RTO: 61 s. */
const MAX_RTO = 61;
/** Default timeouts in seconds, per state (sctp_timeouts[]). */
export const SCTP_DEFAULT_TIMEOUTS: readonly number[] = [
  2,
  4,
  MAX_RTO,
  MAX_RTO,
  MAX_RTO,
  MAX_RTO,
  MAX_RTO,
  MAX_RTO,
  900,
  MAX_RTO,
  MAX_RTO,
  MAX_RTO,
  4,
  MAX_RTO,
];

/** Events (rows of the table) a packet's first chunk stands for. */
export const SCTP_EV_DATA = 0;
export const SCTP_EV_INIT = 1;
export const SCTP_EV_INIT_ACK = 2;
export const SCTP_EV_COOKIE_ECHO = 3;
export const SCTP_EV_COOKIE_ACK = 4;
export const SCTP_EV_SHUTDOWN = 5;
export const SCTP_EV_SHUTDOWN_ACK = 6;
export const SCTP_EV_SHUTDOWN_COMPLETE = 7;
export const SCTP_EV_ERROR = 8;
export const SCTP_EV_ABORT = 9;

/** Chunk type → event (sctp_events[]); types beyond the list count as DATA. */
const CHUNK_EVENTS: readonly number[] = [
  SCTP_EV_DATA, // 0 DATA
  SCTP_EV_INIT, // 1 INIT
  SCTP_EV_INIT_ACK, // 2 INIT ACK
  SCTP_EV_DATA, // 3 SACK
  SCTP_EV_DATA, // 4 HEARTBEAT
  SCTP_EV_DATA, // 5 HEARTBEAT ACK
  SCTP_EV_ABORT, // 6 ABORT
  SCTP_EV_SHUTDOWN, // 7 SHUTDOWN
  SCTP_EV_SHUTDOWN_ACK, // 8 SHUTDOWN ACK
  SCTP_EV_ERROR, // 9 ERROR
  SCTP_EV_COOKIE_ECHO, // 10 COOKIE ECHO
  SCTP_EV_COOKIE_ACK, // 11 COOKIE ACK
  SCTP_EV_DATA, // 12 ECNE
  SCTP_EV_DATA, // 13 CWR
  SCTP_EV_SHUTDOWN_COMPLETE, // 14 SHUTDOWN COMPLETE
];

/**
 * The event for a packet: its first chunk's type, except that a COOKIE ECHO or COOKIE ACK
 * followed by an ABORT counts as the ABORT (pass the second chunk's type, or -1 when none).
 */
export function sctpEvent(firstChunk: number, nextChunk = -1): number {
  const type = (firstChunk === 10 || firstChunk === 11) && nextChunk === 6 ? 6 : firstChunk;
  return CHUNK_EVENTS[type] ?? SCTP_EV_DATA;
}

const I1 = SCTP_S_INIT1;
const IN = SCTP_S_INIT;
const CS = SCTP_S_COOKIE_SENT;
const CR = SCTP_S_COOKIE_REPLIED;
const CW = SCTP_S_COOKIE_WAIT;
const CO = SCTP_S_COOKIE;
const CE = SCTP_S_COOKIE_ECHOED;
const ES = SCTP_S_ESTABLISHED;
const SS = SCTP_S_SHUTDOWN_SENT;
const SR = SCTP_S_SHUTDOWN_RECEIVED;
const SA = SCTP_S_SHUTDOWN_ACK_SENT;
const RJ = SCTP_S_REJECTED;
const CL = SCTP_S_CLOSED;

/**
 * next = SCTP_STATES[direction][event][current]; direction 0 INPUT, 1 OUTPUT, 2 INPUT_ONLY;
 * columns in state numbering order (NONE INIT1 INIT C-SENT C-REPLIED C-WAIT COOKIE C-ECHOED
 * ESTABLISHED S-SENT S-RECEIVED S-ACK-SENT REJECTED CLOSED). The current kernel's table.
 */
export const SCTP_STATES: readonly (readonly (readonly number[])[])[] = [
  [
    // INPUT
    /* data */ [ES, I1, IN, CS, CR, CW, CO, CE, ES, SS, SR, SA, RJ, CL],
    /* init */ [I1, IN, IN, CS, CR, CW, CO, CE, ES, SS, SR, SA, IN, IN],
    /* i_a  */ [CW, CW, CW, CS, CR, CO, CO, CE, ES, SS, SR, SA, RJ, CL],
    /* c_e  */ [CR, IN, IN, CR, CR, CW, CO, CE, ES, SS, SR, SA, RJ, CL],
    /* c_a  */ [ES, I1, IN, CS, CR, CW, CO, ES, ES, SS, SR, SA, RJ, CL],
    /* s    */ [SR, I1, IN, CS, CR, CW, CO, CE, SR, SS, SR, SA, RJ, CL],
    /* s_a  */ [CL, IN, IN, CS, CR, CW, CO, CE, ES, CL, SR, CL, RJ, CL],
    /* s_c  */ [CL, CL, CL, CS, CR, CW, CO, CE, ES, SS, SR, CL, RJ, CL],
    /* err  */ [CL, I1, IN, CS, CR, CW, CO, CL, ES, SS, SR, SA, RJ, CL],
    /* ab   */ [CL, CL, CL, CL, CL, RJ, CL, CL, CL, CL, CL, CL, CL, CL],
  ],
  [
    // OUTPUT
    /* data */ [ES, I1, IN, CS, CR, CW, CO, CE, ES, SS, SR, SA, RJ, CL],
    /* init */ [CW, CW, CW, CW, CW, CW, CW, CW, ES, CW, CW, CW, CW, CW],
    /* i_a  */ [CS, CS, CS, CS, CR, CW, CO, CE, ES, SS, SR, SA, RJ, CL],
    /* c_e  */ [CE, CE, CE, CE, CE, CE, CE, CE, ES, SS, SR, SA, RJ, CL],
    /* c_a  */ [ES, ES, ES, ES, ES, ES, ES, ES, ES, SS, SR, SA, RJ, CL],
    /* s    */ [SS, SS, SS, SS, SS, SS, SS, SS, SS, SS, SR, SA, RJ, CL],
    /* s_a  */ [SA, SA, SA, SA, SA, CW, CO, CE, ES, SA, SA, SA, RJ, CL],
    /* s_c  */ [CL, I1, IN, CS, CR, CW, CO, CE, ES, SS, SR, SA, RJ, CL],
    /* err  */ [CL, CL, CL, CL, CL, CW, CO, CE, ES, SS, SR, SA, RJ, CL],
    /* ab   */ [CL, RJ, CL, CL, CL, CL, CL, CL, CL, CL, CL, CL, CL, CL],
  ],
  [
    // INPUT_ONLY
    /* data */ [ES, I1, IN, CS, CR, ES, CO, CE, ES, SS, SR, SA, RJ, CL],
    /* init */ [I1, IN, IN, IN, IN, IN, CO, CE, ES, SS, SR, SA, IN, IN],
    /* i_a  */ [CE, CE, CE, CE, CE, CE, CO, CE, ES, SS, SR, SA, RJ, CL],
    /* c_e  */ [ES, ES, ES, ES, ES, ES, CO, CE, ES, SS, SR, SA, RJ, CL],
    /* c_a  */ [ES, I1, IN, ES, ES, CW, ES, ES, ES, SS, SR, SA, RJ, CL],
    /* s    */ [SR, I1, IN, CS, CR, CW, CO, CE, SR, SS, SR, SA, RJ, CL],
    /* s_a  */ [CL, IN, IN, CS, CR, CW, CO, CE, CL, CL, SR, CL, RJ, CL],
    /* s_c  */ [CL, CL, CL, CL, CL, CW, CO, CE, ES, SS, CL, CL, RJ, CL],
    /* err  */ [CL, I1, IN, CS, CR, CW, CO, CE, ES, SS, SR, SA, RJ, CL],
    /* ab   */ [CL, CL, CL, CL, CL, RJ, CL, CL, CL, CL, CL, CL, CL, CL],
  ],
];

/** Next state for a packet: direction index 0 INPUT, 1 OUTPUT, 2 INPUT_ONLY. */
export function sctpNextState(dirIndex: number, current: number, event: number): number {
  return SCTP_STATES[dirIndex]?.[event]?.[current] ?? current;
}
