// Desired state as plain data: what a configuration (ipvsadm rules, keepalived.conf, ldirectord.cf)
// says the service table should hold. control/reconcile.ts turns the difference between this and
// the live table into operations, so unchanged services keep their connections and counters.

import type { DestSpec } from "../core/dest.ts";
import type { ServiceKey, ServiceOptions } from "../core/service.ts";

export interface DesiredService {
  key: ServiceKey;
  options: ServiceOptions;
  /** In the order they should be added (ipvsadm adds at the list head, so order matters for rr). */
  dests: DestSpec[];
}

export interface DesiredState {
  services: DesiredService[];
}
