// The seeds' topologies, rebuilt in network namespaces. Every mode uses one L2 segment (a bridge)
// with the addresses of seed 001: client 192.168.122.70, director 192.168.122.30, VIP
// 192.168.122.22, real servers 192.168.122.45, .46, ... Per mode, the real servers are prepared
// as an LVS operator would: DR and TUN run `tvs realserver start` (VIP on lo, ARP suppression;
// TUN also decapsulates IPIP), NAT routes replies to the client through the director (seed 001's
// `ip r add <client>/32 via <director>`), FULLNAT needs nothing on the real servers.

import { join } from "node:path";
import { type AddressPlan, realServerAddress, SEED001_ADDRESSES } from "./addresses.ts";
import { ipIn, runIn } from "./exec.ts";
import { type Host, Lab } from "./netns.ts";

export type LabMode = "nat" | "dr" | "tun" | "fullnat";
export const LAB_MODES: readonly LabMode[] = ["nat", "dr", "tun", "fullnat"];

// Seed 001's addresses (the default plan; --addresses seed000 picks seed 000's).
export const SUBNET_PREFIX = SEED001_ADDRESSES.prefix;
export const CLIENT_IP = SEED001_ADDRESSES.client;
export const DIRECTOR_IP = SEED001_ADDRESSES.director;
export const VIP = SEED001_ADDRESSES.vip;
/** FULLNAT local address: an address the director's kernel does not own, answered in userspace. */
export const FULLNAT_LOCAL_IP = SEED001_ADDRESSES.fullnatLocal;
export const HTTP_PORT = 80;
/** A second real-server port, for NAT port mapping (VIP:80 → RS:8080). */
export const MAPPED_PORT = 8080;
export const UDP_PORT = 5353;

export interface RealServer {
  name: string;
  host: Host;
  ip: string;
}

export interface Topology {
  lab: Lab;
  mode: LabMode;
  plan: AddressPlan;
  client: Host;
  director: Host;
  realServers: RealServer[];
}

export const REPO_ROOT = join(import.meta.dirname, "..", "..");
export const TVS_BIN = join(REPO_ROOT, "bin", "tvs.js");

export function realServerIp(i: number, plan: AddressPlan = SEED001_ADDRESSES): string {
  return realServerAddress(plan, i);
}

export interface TopologyOptions {
  plan?: AddressPlan;
  /**
   * Leave the real servers as they come (no route back for NAT, no VIP on lo for DR/TUN): for the
   * experiments that show what goes wrong without it. prepareRealServer() does it later.
   */
  unprepared?: boolean;
}

/** Build the namespaces, links and addresses for a mode; real servers are prepared per mode. */
export async function buildTopology(
  mode: LabMode,
  realServers: number,
  lab = new Lab(),
  opts: TopologyOptions = {},
): Promise<Topology> {
  if (realServers < 1 || realServers > 50) throw new RangeError(`Real server count "${realServers}" must be 1..50`);
  const plan = opts.plan ?? SEED001_ADDRESSES;
  await lab.createSwitch();
  const client = await lab.addHost("client");
  const director = await lab.addHost("director");
  await ipIn(client.ns, "addr", "add", `${plan.client}/24`, "dev", "eth0");
  await ipIn(director.ns, "addr", "add", `${plan.director}/24`, "dev", "eth0");
  const rss: RealServer[] = [];
  for (let i = 0; i < realServers; i++) {
    const name = `rs${i + 1}`;
    const host = await lab.addHost(name);
    const ip = realServerIp(i, plan);
    await ipIn(host.ns, "addr", "add", `${ip}/24`, "dev", "eth0");
    rss.push({ name, host, ip });
  }
  const topo: Topology = { lab, mode, plan, client, director, realServers: rss };
  if (!opts.unprepared) for (const rs of rss) await prepareRealServer(topo, rs);
  return topo;
}

/** What an operator does on a real server for the mode (seed 001's route back; the VIP on lo). */
export async function prepareRealServer(topo: Topology, rs: RealServer, vip = topo.plan.vip): Promise<void> {
  if (topo.mode === "nat") {
    await ipIn(rs.host.ns, "route", "replace", `${topo.plan.client}/32`, "via", topo.plan.director);
  } else if (topo.mode === "dr" || topo.mode === "tun") {
    await runIn(rs.host.ns, process.execPath, [TVS_BIN, "realserver", "start", "--vip", vip, "--mode", topo.mode], {
      timeoutMs: 60_000,
    });
  }
}

/** Undo what prepareRealServer did that outlives the namespace (TUN decapsulators are processes). */
export async function releaseRealServers(topo: Topology): Promise<void> {
  if (topo.mode !== "dr" && topo.mode !== "tun") return;
  for (const rs of topo.realServers) {
    await runIn(rs.host.ns, process.execPath, [TVS_BIN, "realserver", "stop", "--vip", topo.plan.vip], {
      timeoutMs: 30_000,
    }).catch(() => undefined);
  }
}
