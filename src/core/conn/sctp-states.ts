// SCTP connection states for IPVS (ip_vs_proto_sctp.c): numbering, names (as ipvsadm -c shows
// them) and the kernel's default timeouts. Only the states and timeouts are modelled; socket
// planes set them directly (ESTABLISHED on association, SHUTDOWN_* / CLOSED at the end).

export const SCTP_S_NONE = 0;
export const SCTP_S_INIT1 = 1;
export const SCTP_S_INIT = 2;
export const SCTP_S_COOKIE_SENT = 3;
export const SCTP_S_COOKIE_REPLIED = 4;
export const SCTP_S_COOKIE_WAIT = 5;
export const SCTP_S_COOKIE_ECHOED = 6;
export const SCTP_S_ESTABLISHED = 7;
export const SCTP_S_SHUTDOWN_SENT = 8;
export const SCTP_S_SHUTDOWN_RECEIVED = 9;
export const SCTP_S_SHUTDOWN_ACK_SENT = 10;
export const SCTP_S_REJECTED = 11;
export const SCTP_S_CLOSED = 12;
export const SCTP_S_COUNT = 13;

export const SCTP_STATE_NAMES: readonly string[] = [
  "NONE",
  "INIT1",
  "INIT",
  "COOKIE_SENT",
  "COOKIE_REPLIED",
  "COOKIE_WAIT",
  "COOKIE_ECHOED",
  "ESTABLISHED",
  "SHUTDOWN_SENT",
  "SHUTDOWN_RECEIVED",
  "SHUTDOWN_ACK_SENT",
  "REJECTED",
  "CLOSED",
];

/** Default timeouts in seconds, per state (sctp_timeouts[]). */
export const SCTP_DEFAULT_TIMEOUTS: readonly number[] = [2, 10, 10, 10, 10, 10, 10, 900, 10, 10, 10, 10, 10];
