// Which destinations a health-checked virtual service should hold, as keepalived's check
// subsystem (keepalived/check/ipwrapper.c) arranges them, given each real server's alive flag and
// effective weight and the service's quorum state. Pure: the supervisor diffs two of these to
// decide the add-dest / edit-dest / del-dest requests of a transition.
//
// The rules:
// - Quorum up (or no sorry server): an alive real server is in the service with its effective
//   weight (configured, or misc_dynamic / FILE_CHECK adjusted); a dead one is absent, or present
//   with weight 0 under inhibit_on_failure (ldirectord quiescent=yes).
// - Quorum lost with a sorry server: the sorry server is in the service with its own weight, and
//   every real server is taken out, alive or not (keepalived's perform_quorum_state removes the
//   remaining alive ones; an inhibit_on_failure server is quiesced to weight 0 rather than
//   removed, the "delete" of an inhibited server being a weight-0 edit).
// - The sorry server outside a quorum loss is absent, or at weight 0 with sorry_server_inhibit.

import type { DestSpec } from "../../core/dest.ts";
import { destId } from "../../core/dest-diff.ts";

export interface PoolServer {
  /** The desired DestSpec with the configured weight. */
  dest: DestSpec;
  alive: boolean;
  /** Weight while alive. */
  weight: number;
  inhibit: boolean;
}

export interface PoolSorry {
  dest: DestSpec;
  inhibit: boolean;
}

/** A destination's identity within a service ("10.0.0.1|80"): core's, as the destination diff matches them. */
export const destKey = destId;

/** The sorry server is in use: the quorum is lost and there is one. */
export function sorryInUse(sorry: PoolSorry | undefined, quorumUp: boolean): boolean {
  return sorry !== undefined && !quorumUp;
}

/** The destinations the service should hold (key → spec with the weight to use), in server order. */
export function poolDests(
  servers: PoolServer[],
  sorry: PoolSorry | undefined,
  quorumUp: boolean,
): Map<string, DestSpec> {
  const out = new Map<string, DestSpec>();
  const sorryOn = sorryInUse(sorry, quorumUp);
  for (const s of servers) {
    const k = destKey(s.dest.addr, s.dest.port);
    if (s.alive && !sorryOn) out.set(k, { ...s.dest, weight: s.weight });
    else if (s.inhibit) out.set(k, { ...s.dest, weight: 0 });
  }
  if (sorry) {
    const k = destKey(sorry.dest.addr, sorry.dest.port);
    // A sorry server that is also a real server is left to the real server's rules.
    if (!out.has(k) && !servers.some((s) => destKey(s.dest.addr, s.dest.port) === k)) {
      if (sorryOn) out.set(k, { ...sorry.dest });
      else if (sorry.inhibit) out.set(k, { ...sorry.dest, weight: 0 });
    }
  }
  return out;
}

/** Sum of the weights of alive real servers (keepalived's weigh_live_realservers). */
export function liveWeight(servers: PoolServer[]): number {
  let sum = 0;
  for (const s of servers) if (s.alive) sum += s.weight;
  return sum;
}
