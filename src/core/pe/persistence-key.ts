// What a persistence engine (ipvsadm --pe, keepalived persistence_engine) reads from a new flow's
// first packet to key its template by, for the data planes to pass to ConnTable.schedule. The
// kernel has one engine, sip (ip_vs_pe_sip.c): the Call-ID of a SIP message carried over UDP,
// so one call's messages meet on one real server whatever client port they come from. The
// engine only matters for a persistent service (the kernel consults it in ip_vs_sched_persist);
// without a key a new flow of such a service is dropped there, which core's schedule() does
// when it gets none (ScheduleError "pe-no-data").

import type { Protocol } from "../sched/types.ts";
import type { ServiceKey, ServiceOptions, VirtualService } from "../service.ts";
import { sipCallId } from "./sip-callid.ts";

/** Whether new flows of the service need a persistence key from their first packet. */
export function needsPersistenceKey(svc: VirtualService): boolean {
  return svc.options.persistent && svc.options.pe !== "";
}

/**
 * The engine's key for a packet of the service whose transport payload is payload[off, end)
 * (for UDP, the datagram after its 8-byte header); undefined when the service has no engine,
 * the protocol is not the engine's, or the payload has no key.
 */
export function persistenceKey(
  svc: VirtualService,
  protocol: Protocol,
  payload: Uint8Array,
  off: number,
  end: number,
): string | undefined {
  if (!needsPersistenceKey(svc)) return undefined;
  if (svc.options.pe === "sip" && protocol === "udp") return sipCallId(payload, off, end);
  return undefined;
}

/**
 * Why a data plane refuses the service's engine, or undefined: the kernel accepts --pe sip on a
 * persistent TCP or SCTP service and then drops every new connection of it (the engine reads UDP
 * only), which tvs's data planes refuse instead of reproducing.
 */
export function engineRefusal(key: ServiceKey, options: ServiceOptions): string | undefined {
  if (!options.persistent || options.pe === "" || key.kind !== "vip" || key.protocol === "udp") return undefined;
  return `Persistence engine "${options.pe}" reads UDP datagrams: on a persistent ${key.protocol} service every new connection would be dropped (use it with -u)`;
}
