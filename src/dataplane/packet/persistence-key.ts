// What the packet plane gives core's schedule() for a new flow beyond its tuple: the packet's
// firewall mark, and for a service with a persistence engine (--pe sip) the key read from the UDP
// payload of its first packet (core/pe/persistence-key.ts); and the drop reason of each way
// schedule() can refuse a flow.

import type { ScheduleError, ScheduleOptions } from "../../core/conn/conn-schedule.ts";
import { needsPersistenceKey, persistenceKey } from "../../core/pe/persistence-key.ts";
import type { VirtualService } from "../../core/service.ts";
import { UDP_HLEN } from "./codec/udp.ts";
import type { DropReason } from "./counters.ts";
import type { Pkt } from "./pkt.ts";

/**
 * schedule()'s options for a new flow: the packet's firewall mark (0: none) and the persistence
 * key the service's engine reads from it; undefined when there is neither.
 */
export function packetScheduleOptions(svc: VirtualService, p: Pkt, mark: number): ScheduleOptions | undefined {
  let key: string | undefined;
  if (needsPersistenceKey(svc) && p.protocol !== undefined && p.l4 >= 0) {
    const off = p.protocol === "udp" ? p.l4 + UDP_HLEN : p.l4;
    key = persistenceKey(svc, p.protocol, p.buf, off, p.end);
  }
  if (mark === 0 && key === undefined) return undefined;
  return { ...(mark !== 0 ? { fwmark: mark } : {}), ...(key !== undefined ? { peData: key } : {}) };
}

/** The drop reason for a flow schedule() refused. */
export function scheduleDropReason(error: ScheduleError["error"]): DropReason {
  switch (error) {
    case "no-destination":
      return "noDest";
    case "defense-drop":
      return "dropPacket";
    case "pe-no-data":
      return "peData";
    default:
      return "tableFull";
  }
}
