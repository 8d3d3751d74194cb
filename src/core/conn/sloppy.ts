// Which packet without a connection entry may create one (the kernel's tcp_conn_schedule and
// sctp_conn_schedule). Normally only the start of a connection: a TCP SYN without RST, an SCTP
// packet whose first chunk is INIT. With sloppy_tcp / sloppy_sctp any packet of the protocol may
// (a TCP RST or an SCTP ABORT still may not: it ends a connection, there is nothing to take over). This is what lets
// active-active directors behind ECMP, or a backup after failover without sync, carry on a flow
// that started on another director: the packet is scheduled as if new, and with a consistent
// scheduler (mh over the same real servers) it lands on the real server that already holds the
// connection, which for DR and TUN is all the state there is. The TCP entry then enters the state
// table from NONE with the packet's flags (an ACK gives ESTABLISHED), as the kernel's does.

import { TCP_RST, TCP_SYN } from "./tcp-states.ts";

/** SCTP chunk type INIT (RFC 9260). */
export const SCTP_CHUNK_INIT = 1;
/** SCTP chunk type ABORT (RFC 9260). */
export const SCTP_CHUNK_ABORT = 6;

/** May a TCP segment with these flags and no entry be scheduled? */
export function tcpMaySchedule(flags: number, sloppyTcp: boolean): boolean {
  if ((flags & TCP_RST) !== 0) return false;
  return sloppyTcp || (flags & TCP_SYN) !== 0;
}

/** May an SCTP packet whose first chunk has this type and no entry be scheduled? */
export function sctpMaySchedule(firstChunkType: number, sloppySctp: boolean): boolean {
  if (firstChunkType === SCTP_CHUNK_ABORT) return false;
  return sloppySctp || firstChunkType === SCTP_CHUNK_INIT;
}
