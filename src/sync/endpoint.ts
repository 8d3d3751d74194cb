// The multicast sockets of one sync daemon, set up as the kernel's make_send_sock and
// make_receive_sock do: the sending socket is bound to the interface's address (so peers see
// where messages come from), sends to group:port with the configured TTL, on that interface,
// without looping back to this host; the receiving socket is bound to group:port (SO_REUSEADDR)
// and joins the group on that interface. tvs opens both for either role: a backup also sends
// (bulk-resync requests) and a master also listens (for those requests).

import { createSocket, type Socket } from "node:dgram";
import { readFileSync } from "node:fs";
import { networkInterfaces } from "node:os";

export interface ResolvedInterface {
  name: string;
  /** The address to send from and join on (IPv4 for an IPv4 group; for IPv6 the scoped name). */
  addr: string;
  mtu: number;
}

/** The interface's first address of the family and its MTU, or undefined when there is no such interface. */
export function resolveInterface(name: string, family: 4 | 6): ResolvedInterface | undefined {
  const list = networkInterfaces()[name];
  let mtu = 1500;
  try {
    mtu = Number(readFileSync(`/sys/class/net/${name}/mtu`, "utf8").trim()) || 1500;
  } catch {
    if (list === undefined) return undefined;
  }
  if (family === 6) return { name, addr: `::%${name}`, mtu };
  const a = list?.find((x) => x.family === "IPv4");
  return { name, addr: a?.address ?? "", mtu };
}

export interface EndpointOptions {
  iface: ResolvedInterface;
  group: string;
  port: number;
  ttl: number;
  onMessage: (msg: Uint8Array, from: string) => void;
  onError: (err: Error) => void;
}

/** What sends and receives for a daemon (tests use a memory one). */
export interface SyncEndpoint {
  send(msg: Uint8Array): void;
  close(): void;
  /** Datagrams the kernel refused to queue (EAGAIN and the like). */
  readonly sendErrors: number;
}

export type OpenEndpoint = (o: EndpointOptions) => Promise<SyncEndpoint>;

function bindAsync(s: Socket, opts: { port: number; address?: string; exclusive?: boolean }): Promise<void> {
  return new Promise((resolve, reject) => {
    const fail = (e: Error) => reject(e);
    s.once("error", fail);
    s.bind(opts, () => {
      s.off("error", fail);
      resolve();
    });
  });
}

/** Open the sending and receiving sockets; rejects (and closes what it opened) on failure. */
export const openUdpEndpoint: OpenEndpoint = async (o) => {
  const six = o.group.includes(":");
  const type = six ? "udp6" : "udp4";
  const tx = createSocket({ type });
  const rx = createSocket({ type, reuseAddr: true });
  let sendErrors = 0;
  try {
    // Like bind_mcastif_addr: an interface without an IPv4 address still gets a daemon (the kernel
    // only logs "You probably need to specify IP address on multicast interface").
    const addr = o.iface.addr;
    await bindAsync(tx, six || addr === "" ? { port: 0 } : { port: 0, address: addr });
    tx.setMulticastTTL(o.ttl);
    tx.setMulticastLoopback(false);
    if (addr !== "") tx.setMulticastInterface(addr);
    await bindAsync(rx, { port: o.port, address: o.group });
    if (addr !== "") rx.addMembership(o.group, addr);
    else rx.addMembership(o.group);
  } catch (e) {
    tx.close();
    rx.close();
    throw e;
  }
  tx.on("error", o.onError);
  rx.on("error", o.onError);
  rx.on("message", (msg, rinfo) => o.onMessage(msg, rinfo.address));
  return {
    send(msg: Uint8Array) {
      tx.send(msg, o.port, o.group, (err) => {
        if (err) sendErrors++;
      });
    },
    close() {
      tx.close();
      rx.close();
    },
    get sendErrors() {
      return sendErrors;
    },
  };
};
