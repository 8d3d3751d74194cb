// Name look-ups for tvsadm as ipvsadm does them through libc: host names with gethostbyname (IPv4
// only) and gethostbyaddr (here getnameinfo through dns.lookupService, which also reads
// /etc/hosts), service names and ports from /etc/services per protocol (getservbyname/-byport).
// node:dns is imported on first use: `tvsadm -L -n` never resolves and should not pay for it.

import { readFileSync } from "node:fs";
import type { NameResolver } from "../../config/ipvsadm-grammar.ts";
import { MAX_PORT } from "../../core/addr.ts";
import type { Protocol } from "../../core/sched/types.ts";
import type { NameTable } from "./format.ts";

/** Everything tvsadm looks up: forward (for arguments) and reverse (for listings without -n). */
export interface TvsadmResolver extends NameResolver {
  /** Host name of an address, or undefined to print the address. */
  addrToHost(addr: string): Promise<string | undefined>;
  /** Official service name of a port for a protocol, or undefined to print the number. */
  portToService(port: number, protocol: Protocol): string | undefined;
}

export interface ServicesDb {
  byName: Map<string, number>;
  byPort: Map<string, string>;
}

/** Parse /etc/services text: "name port/proto [aliases...] [# comment]"; the first entry wins. */
export function parseServices(text: string): ServicesDb {
  const byName = new Map<string, number>();
  const byPort = new Map<string, string>();
  for (const raw of text.split("\n")) {
    const line = raw.replace(/#.*/, "").trim();
    if (line === "") continue;
    const [name, portProto, ...aliases] = line.split(/\s+/);
    const m = /^(\d+)\/(\w+)$/.exec(portProto ?? "");
    if (!name || !m) continue;
    const port = Number(m[1]);
    const proto = m[2] as string;
    if (port > MAX_PORT) continue;
    for (const n of [name, ...aliases]) if (!byName.has(`${n}/${proto}`)) byName.set(`${n}/${proto}`, port);
    if (!byPort.has(`${port}/${proto}`)) byPort.set(`${port}/${proto}`, name);
  }
  return { byName, byPort };
}

function loadServices(path: string): ServicesDb {
  try {
    return parseServices(readFileSync(path, "utf8"));
  } catch {
    return { byName: new Map(), byPort: new Map() };
  }
}

export class SystemResolver implements TvsadmResolver {
  #services: ServicesDb | undefined;
  readonly #servicesPath: string;

  constructor(servicesPath = "/etc/services") {
    this.#servicesPath = servicesPath;
  }

  get #db(): ServicesDb {
    this.#services ??= loadServices(this.#servicesPath);
    return this.#services;
  }

  async hostToIpv4(name: string): Promise<string | undefined> {
    try {
      const { lookup } = await import("node:dns/promises");
      return (await lookup(name, { family: 4 })).address;
    } catch {
      return undefined;
    }
  }

  async addrToHost(addr: string): Promise<string | undefined> {
    try {
      const { lookupService } = await import("node:dns/promises");
      const { hostname } = await lookupService(addr, 0);
      return hostname === addr ? undefined : hostname;
    } catch {
      return undefined;
    }
  }

  serviceToPort(name: string, protocol: Protocol): number | undefined {
    return this.#db.byName.get(`${name}/${protocol}`);
  }

  portToService(port: number, protocol: Protocol): string | undefined {
    return this.#db.byPort.get(`${port}/${protocol}`);
  }
}

/** Look every address up at once, then answer synchronously while formatting. */
export async function nameTable(resolver: TvsadmResolver, addrs: Iterable<string>): Promise<NameTable> {
  const hosts = new Map<string, string | undefined>();
  await Promise.all(
    [...new Set(addrs)].map(async (a) => {
      hosts.set(a, await resolver.addrToHost(a));
    }),
  );
  return {
    host: (a) => hosts.get(a),
    service: (port, protocol) => resolver.portToService(port, protocol),
  };
}
