// A service key as one stable string ("tcp 10.0.0.1:80", "fwmark 1 ipv4"): the id in maps, logs and
// the control API's ?service= query. Its own module so the CLI can name a service without loading
// the service model (service.ts re-exports it).

import { formatEndpoint } from "./addr.ts";
import type { ServiceKey } from "./service.ts";

/** A stable string for maps and logs: "tcp 10.0.0.1:80", "fwmark 1 ipv4". */
export function serviceKeyId(key: ServiceKey): string {
  return key.kind === "fwmark"
    ? `fwmark ${key.fwmark} ipv${key.family}`
    : `${key.protocol} ${formatEndpoint(key.addr, key.port)}`;
}
