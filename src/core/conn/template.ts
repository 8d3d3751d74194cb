// Persistence templates (the kernel's ip_vs_sched_persist and ip_vs_check_template): how a new
// flow of a persistent service is keyed to its template, which ports the template and the new
// connection carry, and when an existing template may no longer be used.
//
// A template is an entry with client port 0 whose client address is the client's network (the
// address masked by the service's netmask, ipvsadm -M). Its key is the service plus that network
// plus the virtual port the kernel puts in it: the service port for an ordinary persistent
// service, 0 for a port-0 service, a fwmark service (whose template the kernel keys by the mark
// and protocol IPPROTO_IP, so TCP and UDP flows of one client share it) and FTP (port 21, whose
// data connections use other ports).
//
// With a persistence engine (--pe sip) the key also holds what the engine read from the packet
// (the SIP Call-ID): one template per client network and call, so a call's messages reach one
// real server whatever source port they come from, and different calls spread.

import { maskIp } from "../addr.ts";
import type { Dest } from "../dest.ts";
import type { Flow } from "../sched/types.ts";
import type { VirtualService } from "../service.ts";

export const FTP_PORT = 21;

/** The service port as the kernel compares it: 0 for a fwmark service. */
export function servicePort(svc: VirtualService): number {
  return svc.key.kind === "vip" ? svc.key.port : 0;
}

/** The client network a template stands for (the address masked by the service's netmask). */
export function clientNetwork(svc: VirtualService, caddr: string): string {
  const full = svc.family === 4 ? 32 : 128;
  return svc.options.netmask >= full ? caddr : maskIp(caddr, svc.options.netmask);
}

/** The template's virtual port: the service port for an ordinary service, else 0. */
export function templateVport(svc: VirtualService, flow: Flow): number {
  const sp = servicePort(svc);
  return flow.dport === sp && sp !== FTP_PORT ? flow.dport : 0;
}

/** The template's real-server port: the dest's port for an ordinary service, else 0. */
export function templateDport(svc: VirtualService, flow: Flow, dest: Dest): number {
  const sp = servicePort(svc);
  return flow.dport === sp && sp !== FTP_PORT ? dest.port : 0;
}

/** The real-server port of a connection created under a template. */
export function persistentConnDport(svc: VirtualService, flow: Flow, dest: Dest): number {
  return flow.dport === servicePort(svc) && dest.port !== 0 ? dest.port : flow.dport;
}

/**
 * The key under which the template for this flow is found. With a persistence engine the key
 * also holds the engine's data (the kernel's pe->ct_match compares it too): one client network
 * then has one template per SIP call.
 */
export function templateKey(svc: VirtualService, network: string, vport: number, peData?: string): string {
  const base = `${svc.id}|${network}|${vport}`;
  return peData === undefined ? base : `${base}|${svc.options.pe}:${peData}`;
}

/**
 * ip_vs_check_template: a template may keep pinning clients only while its destination is still
 * in the service and, with expire_quiescent_template, not quiesced (weight 0).
 */
export function templateUsable(dest: Dest, expireQuiescentTemplate: boolean): boolean {
  if (!dest.available) return false;
  if (expireQuiescentTemplate && dest.weight === 0) return false;
  return true;
}
