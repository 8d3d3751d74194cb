// Which VIPs this director announces. A route is per VIP, not per port, so a VIP is announced only
// when the director can serve everything addressed to it: every virtual service on that address is
// present with its quorum held (the health supervisor's verdict: live weight at or above quorum;
// a service without health checks needs one destination with weight above 0), and the director is
// not draining. A sorry server does not count: during a quorum loss the VIP is withdrawn, so the
// router sends the flows to directors that still reach their real servers. fwmark services have no
// address of their own and are not announced. Pure: the daemon gathers the views and applies the
// answer.

export interface ServiceServeView {
  /** The VIP (canonical text); undefined for an fwmark service. */
  addr: string | undefined;
  /** Health supervision's quorum state; undefined when the service has no health checks. */
  quorumUp: boolean | undefined;
  /** Destinations with weight above 0 that are available. */
  servingDests: number;
}

/** Why a VIP is or is not announced, for status and logs. */
export interface VipDecision {
  vip: string;
  announce: boolean;
  reason: string;
}

/**
 * `hold`: a reason to announce nothing yet although the services could serve (a sync backup still
 * getting the table from its peers: flows sent here now would find no entry).
 */
export function decideVips(
  services: readonly ServiceServeView[],
  draining: boolean,
  hold?: string | undefined,
): VipDecision[] {
  const byVip = new Map<string, ServiceServeView[]>();
  for (const s of services) {
    if (s.addr === undefined) continue;
    let l = byVip.get(s.addr);
    if (l === undefined) byVip.set(s.addr, (l = []));
    l.push(s);
  }
  const out: VipDecision[] = [];
  for (const [vip, list] of byVip) {
    let reason = "every service on it can serve";
    if (draining) reason = "draining";
    else if (hold !== undefined) reason = hold;
    else {
      const lost = list.filter((s) => s.quorumUp === false).length;
      const empty = list.filter((s) => s.quorumUp === undefined && s.servingDests === 0).length;
      if (lost > 0) reason = `${lost} of ${list.length} services lost quorum`;
      else if (empty > 0) reason = `${empty} of ${list.length} services have no destination with weight above 0`;
    }
    out.push({ vip, announce: reason === "every service on it can serve", reason });
  }
  return out.sort((a, b) => (a.vip < b.vip ? -1 : a.vip > b.vip ? 1 : 0));
}

/** The announced VIPs of a decision, sorted. */
export function announcedVips(decisions: readonly VipDecision[]): string[] {
  return decisions.filter((d) => d.announce).map((d) => d.vip);
}
