// Which IPVS sysctls a data plane honours. Every one is accepted on the packet plane (it sees each
// segment, as the kernel does). The socket plane terminates TCP in the host's stack: a flow cannot
// be picked up mid-connection (sloppy_tcp) and tvs never sees the handshake's segments (secure_tcp),
// it never answers a SYN itself (synproxy) nor forwards one (stateless_syn), so turning those on there is refused rather than
// silently ignored. Only the packet plane carries SCTP, so sloppy_sctp is refused on the socket
// plane likewise.

import type { SysctlName } from "../core/conn/sysctl.ts";
import { CoreError } from "../core/errors.ts";

export function checkSysctlForPlane(name: SysctlName, value: number, plane: string): void {
  if (value === 0) return;
  if (name === "sloppy_sctp" && plane !== "packet")
    throw new CoreError(
      "EOPNOTSUPP",
      "conn",
      "sysctl sloppy_sctp needs the packet data plane (the socket plane carries no SCTP)",
    );
  if (
    plane !== "packet" &&
    (name === "sloppy_tcp" || name === "secure_tcp" || name === "synproxy" || name === "stateless_syn")
  )
    throw new CoreError(
      "EOPNOTSUPP",
      "conn",
      `sysctl ${name} needs the packet data plane (the socket plane terminates TCP and never sees the segments it acts on)`,
    );
}
