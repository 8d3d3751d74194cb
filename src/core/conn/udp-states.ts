// UDP connection state for IPVS (ip_vs_proto_udp.c): a single state, shown as "UDP", whose
// timeout (300 s by default) is changed by ipvsadm --set.

export const UDP_S_NORMAL = 0;
export const UDP_S_COUNT = 1;
export const UDP_STATE_NAMES: readonly string[] = ["UDP"];
/** Default timeouts in seconds, per state. */
export const UDP_DEFAULT_TIMEOUTS: readonly number[] = [300];
