// What the packet plane asks of an SCTP packet beyond its ports (ip_vs_proto_sctp.c and
// ip_vs_core.c's is_new_conn): whether it starts an association (its first chunk is INIT), which
// under conn_reuse_mode replaces an entry that has reached CLOSED by a newly scheduled one. Which
// packets without an entry may create one is core's rule (core/conn/sloppy.ts: INIT, or anything
// but ABORT with sloppy_sctp); the state each packet drives is core's table (sctp-states.ts).

import { SCTP_CID_INIT } from "./codec/sctp.ts";
import type { Pkt } from "./pkt.ts";

/** Whether the SCTP packet starts a new association (its first chunk is INIT). */
export function sctpStartsAnew(p: Pkt): boolean {
  return p.sctp.first === SCTP_CID_INIT;
}
