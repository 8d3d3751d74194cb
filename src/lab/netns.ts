// Network namespaces for the lab: a Lab owns a unique name prefix, creates namespaces and a
// switch (a bridge in its own namespace), plugs hosts into it with veth pairs, and removes
// everything it made — and only that — on destroy().

import { randomBytes } from "node:crypto";
import { ipIn, run, runIn } from "./exec.ts";

export interface Host {
  /** Logical name: "client", "director", "rs1", ... */
  name: string;
  /** Network namespace name. */
  ns: string;
  /** The host's interface on the switch (always "eth0" inside its namespace). */
  ifname: string;
}

export class Lab {
  readonly prefix: string;
  readonly switchNs: string;
  readonly #namespaces: string[] = [];
  readonly #hosts = new Map<string, Host>();
  #portCount = 0;

  /**
   * `prefix` names every namespace and interface (at most 11 characters: interface names are
   * PREFIX + "h" + index). By default "tl" and 4 random hex digits, or TVS_LAB_PREFIX and 2 (so
   * several people on one machine can tell their labs apart).
   */
  constructor(
    prefix = process.env.TVS_LAB_PREFIX
      ? `${process.env.TVS_LAB_PREFIX.slice(0, 9)}${randomBytes(1).toString("hex")}`
      : `tl${randomBytes(2).toString("hex")}`,
  ) {
    this.prefix = prefix;
    this.switchNs = `${prefix}-sw`;
  }

  host(name: string): Host {
    const h = this.#hosts.get(name);
    if (!h) throw new Error(`No lab host "${name}"`);
    return h;
  }

  hosts(): Host[] {
    return [...this.#hosts.values()];
  }

  async #addNs(ns: string): Promise<void> {
    await run("ip", ["netns", "add", ns]);
    this.#namespaces.push(ns);
    await ipIn(ns, "link", "set", "lo", "up");
    // New namespaces start with the kernel defaults; make the ones that matter explicit.
    for (const [k, v] of [
      ["net.ipv4.conf.all.rp_filter", "0"],
      ["net.ipv4.conf.default.rp_filter", "0"],
      ["net.ipv6.conf.all.disable_ipv6", "1"],
      ["net.ipv6.conf.default.disable_ipv6", "1"],
    ] as const) {
      await runIn(ns, "sysctl", ["-qw", `${k}=${v}`]);
    }
  }

  /** Create the switch namespace with bridge br0. */
  async createSwitch(): Promise<void> {
    await this.#addNs(this.switchNs);
    await ipIn(this.switchNs, "link", "add", "br0", "type", "bridge", "stp_state", "0", "mcast_snooping", "0");
    await ipIn(this.switchNs, "link", "set", "br0", "up");
  }

  /** Create a host namespace plugged into the switch; its interface is eth0. */
  async addHost(name: string): Promise<Host> {
    const ns = `${this.prefix}-${name}`;
    await this.#addNs(ns);
    const n = this.#portCount++;
    const a = `${this.prefix}h${n}`;
    const b = `${this.prefix}p${n}`;
    await run("ip", ["link", "add", a, "type", "veth", "peer", "name", b]);
    await run("ip", ["link", "set", a, "netns", ns]);
    await run("ip", ["link", "set", b, "netns", this.switchNs]);
    await ipIn(ns, "link", "set", a, "name", "eth0");
    await ipIn(ns, "link", "set", "eth0", "up");
    await ipIn(this.switchNs, "link", "set", b, "master", "br0");
    await ipIn(this.switchNs, "link", "set", b, "up");
    const host: Host = { name, ns, ifname: "eth0" };
    this.#hosts.set(name, host);
    return host;
  }

  /** Delete every namespace this lab created (their interfaces go with them). */
  async destroy(): Promise<void> {
    for (const ns of this.#namespaces.reverse()) {
      await run("ip", ["netns", "del", ns]).catch(() => undefined);
    }
    this.#namespaces.length = 0;
    this.#hosts.clear();
  }
}
