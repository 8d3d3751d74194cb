// The seeds' topologies, rebuilt in network namespaces. Every mode uses one L2 segment (a bridge)
// with the addresses of seed 001: client 192.168.122.70, director 192.168.122.30, VIP
// 192.168.122.22, real servers 192.168.122.45, .46, ... Per mode, the real servers are prepared
// as an LVS operator would: DR and TUN run `tvs realserver start` (VIP on lo, ARP suppression;
// TUN also decapsulates IPIP), NAT routes replies to the client through the director (seed 001's
// `ip r add <client>/32 via <director>`), FULLNAT needs nothing on the real servers.

import { join } from "node:path";
import { ipIn, runIn } from "./exec.ts";
import { type Host, Lab } from "./netns.ts";

export type LabMode = "nat" | "dr" | "tun" | "fullnat";
export const LAB_MODES: readonly LabMode[] = ["nat", "dr", "tun", "fullnat"];

export const SUBNET_PREFIX = "192.168.122";
export const CLIENT_IP = `${SUBNET_PREFIX}.70`;
export const DIRECTOR_IP = `${SUBNET_PREFIX}.30`;
export const VIP = `${SUBNET_PREFIX}.22`;
/** FULLNAT local address: an address the director's kernel does not own, answered in userspace. */
export const FULLNAT_LOCAL_IP = `${SUBNET_PREFIX}.31`;
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
  client: Host;
  director: Host;
  realServers: RealServer[];
}

export const REPO_ROOT = join(import.meta.dirname, "..", "..");
export const TVS_BIN = join(REPO_ROOT, "bin", "tvs.js");

export function realServerIp(i: number): string {
  return `${SUBNET_PREFIX}.${45 + i}`;
}

/** Build the namespaces, links and addresses for a mode; real servers are prepared per mode. */
export async function buildTopology(mode: LabMode, realServers: number, lab = new Lab()): Promise<Topology> {
  if (realServers < 1 || realServers > 50) throw new RangeError(`Real server count "${realServers}" must be 1..50`);
  await lab.createSwitch();
  const client = await lab.addHost("client");
  const director = await lab.addHost("director");
  await ipIn(client.ns, "addr", "add", `${CLIENT_IP}/24`, "dev", "eth0");
  await ipIn(director.ns, "addr", "add", `${DIRECTOR_IP}/24`, "dev", "eth0");
  const rss: RealServer[] = [];
  for (let i = 0; i < realServers; i++) {
    const name = `rs${i + 1}`;
    const host = await lab.addHost(name);
    const ip = realServerIp(i);
    await ipIn(host.ns, "addr", "add", `${ip}/24`, "dev", "eth0");
    rss.push({ name, host, ip });
  }
  for (const rs of rss) await prepareRealServer(mode, rs);
  return { lab, mode, client, director, realServers: rss };
}

async function prepareRealServer(mode: LabMode, rs: RealServer): Promise<void> {
  if (mode === "nat") {
    await ipIn(rs.host.ns, "route", "add", `${CLIENT_IP}/32`, "via", DIRECTOR_IP);
  } else if (mode === "dr" || mode === "tun") {
    await runIn(rs.host.ns, process.execPath, [TVS_BIN, "realserver", "start", "--vip", VIP, "--mode", mode], {
      timeoutMs: 60_000,
    });
  }
}

/** Undo what prepareRealServer did that outlives the namespace (TUN decapsulators are processes). */
export async function releaseRealServers(topo: Topology): Promise<void> {
  if (topo.mode !== "dr" && topo.mode !== "tun") return;
  for (const rs of topo.realServers) {
    await runIn(rs.host.ns, process.execPath, [TVS_BIN, "realserver", "stop", "--vip", VIP], {
      timeoutMs: 30_000,
    }).catch(() => undefined);
  }
}
