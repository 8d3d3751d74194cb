// Userspace tunnel decapsulation for TUN-mode real servers on kernels without the ipip / ip6_tunnel
// modules (as on this machine). Raw IP sockets receive each encapsulated packet the director sent
// (having a raw socket for the protocol also stops the kernel answering "protocol unreachable" /
// "parameter problem"), the outer header is stripped, and the inner packet — only if it has the
// VIP's family and is addressed to this host's VIP — is written into a TUN device, where the
// kernel receives it as if it had arrived on the wire and delivers it to the VIP on lo. Replies
// leave by the normal route, straight to the client, as LVS/TUN intends.
//
// The inner protocol follows the VIP's family (4: IPIP, 41: IPv6), and the director may use
// either outer family (its tunnel's outer header has the real server's family; the kernel allows
// mixed families), so two raw sockets are opened: an IPv4 one, which delivers the outer IPv4
// header with the packet, and an IPv6 one, which delivers only the payload (the kernel strips the
// IPv6 header and its extension headers from what a raw IPv6 socket reads): IPv4-in-IPv4 and
// IPv4-in-IPv6 for an IPv4 VIP, IPv6-in-IPv6 and IPv6-in-IPv4 for an IPv6 VIP.
//
// The director's other tunnel types (--tun-type gue|gre) are taken the same way with a different
// front end (decap-headers.ts): GRE through raw sockets for protocol 47 (both outer families), GUE
// through UDP sockets bound to the tunnel port (the kernel checks the UDP checksum and strips the
// UDP header; an IPv6 datagram with checksum 0 is dropped by the kernel, so GUE over IPv6 needs
// the director's --tun-csum or --tun-remcsum). Each decapsulator takes the one type it was started
// for, as a kernel real server takes what its tunnel devices are configured for.

import { execFileSync } from "node:child_process";
import { createSocket, type Socket } from "node:dgram";
import { writeFileSync } from "node:fs";
import { parseIpv4, parseIpv6Groups } from "../core/addr.ts";
import type { TunType } from "../core/dest.ts";
import { loadNative } from "../platform/native-addon.ts";
import { innerFromGre4, innerFromGreHeader, innerFromGue, innerIsForVip } from "./decap-headers.ts";

const IPPROTO_IPIP = 4;
const IPPROTO_IPV6 = 41;
const READABLE = 1;

export interface DecapCounters {
  decapsulated: number;
  /** Not the VIP's family inside the expected tunnel, truncated, or not addressed to the VIP. */
  rejected: number;
  writeErrors: number;
}

/** The VIP as bytes: 4 for IPv4, 16 for IPv6; undefined when the text is neither. */
export function vipBytes(text: string): Uint8Array | undefined {
  const v4 = parseIpv4(text);
  if (v4 !== undefined) return Uint8Array.of(v4 >>> 24, (v4 >>> 16) & 0xff, (v4 >>> 8) & 0xff, v4 & 0xff);
  const g = parseIpv6Groups(text);
  if (!g) return undefined;
  const out = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    out[i * 2] = g[i]! >>> 8;
    out[i * 2 + 1] = g[i]! & 0xff;
  }
  return out;
}

/**
 * A packet read from the raw IPv4 socket (at buf[at], len bytes, outer IPv4 header included):
 * [offset in buf, length] of the inner packet to deliver, or undefined to drop it. The outer
 * protocol must be the VIP family's tunnel protocol (4 for an IPv4 VIP, 41 for an IPv6 one).
 */
export function innerFromIpv4(buf: Uint8Array, at: number, len: number, vip: Uint8Array): [number, number] | undefined {
  if (len < 20 || buf[at]! >> 4 !== 4) return undefined;
  const ihl = (buf[at]! & 15) * 4;
  const proto = vip.length === 16 ? IPPROTO_IPV6 : IPPROTO_IPIP;
  if (ihl < 20 || buf[at + 9] !== proto || len < ihl) return undefined;
  if (!innerIsForVip(buf, at + ihl, len - ihl, vip)) return undefined;
  return [at + ihl, len - ihl];
}

/**
 * A packet read from the raw IPv6 socket for the VIP family's tunnel protocol (at buf[at], len
 * bytes): the kernel has already removed the outer IPv6 header, so what was read is the inner
 * packet itself, delivered when it is for the VIP.
 */
export function innerFromIpv6(buf: Uint8Array, at: number, len: number, vip: Uint8Array): [number, number] | undefined {
  if (!innerIsForVip(buf, at, len, vip)) return undefined;
  return [at, len];
}

/** IPv4-in-IPv4 with the VIP as a number (the original interface, kept for callers and tests). */
export function innerPacket(buf: Uint8Array, at: number, len: number, vip: number): [number, number] | undefined {
  return innerFromIpv4(buf, at, len, Uint8Array.of(vip >>> 24, (vip >>> 16) & 0xff, (vip >>> 8) & 0xff, vip & 0xff));
}

const IPPROTO_GRE = 47;

/** Which tunnel the decapsulator takes: the type, and for GUE the UDP port. */
export interface DecapTunnel {
  type: TunType;
  port: number;
}

/** Run until SIGTERM/SIGINT. */
export async function runDecapsulator(
  vipText: string,
  device: string,
  tunnel: DecapTunnel = { type: "ipip", port: 0 },
): Promise<number> {
  const vip = vipBytes(vipText);
  if (vip === undefined) throw new Error(`Invalid VIP "${vipText}"`);
  const v6 = vip.length === 16;
  const proto = tunnel.type === "gre" ? IPPROTO_GRE : v6 ? IPPROTO_IPV6 : IPPROTO_IPIP;
  const native = loadNative();
  const sockets: { fd: number; outer: 4 | 6 }[] = [];
  for (const outer of tunnel.type === "gue" ? [] : ([4, 6] as const)) {
    try {
      sockets.push({ fd: native.openRawIp(outer, proto), outer });
    } catch (e) {
      // Only the VIP's own family is required; the other outer family is a mixed-family extra.
      if (outer === (v6 ? 6 : 4)) throw e;
      process.stderr.write(
        `${JSON.stringify({ msg: "no raw socket for the other outer family", outer, error: String(e) })}\n`,
      );
    }
  }
  // Bound before the device comes up: `tvs realserver start` returns once it is up.
  const udp = tunnel.type === "gue" ? await openGueSockets(tunnel.port, v6) : [];
  const [tun, name] = native.openTun(device);
  // The device must accept the inner packets: no reverse-path filter for IPv4; for IPv6 the device
  // may have inherited disable_ipv6 from the namespace's defaults.
  if (v6) writeFileSync(`/proc/sys/net/ipv6/conf/${name}/disable_ipv6`, "0\n");
  execFileSync("ip", ["link", "set", "dev", name, "up"]);
  if (!v6) writeFileSync(`/proc/sys/net/ipv4/conf/${name}/rp_filter`, "0\n");
  // Batches of up to 64 packets into one preallocated buffer: no allocation per packet.
  const SLOT = 65536;
  const BATCH = 64;
  const buf = Buffer.alloc(SLOT * BATCH);
  const meta = new Int32Array(BATCH * 4);
  const desc = new Int32Array(BATCH * 2);
  const counters: DecapCounters = { decapsulated: 0, rejected: 0, writeErrors: 0 };
  const polls = sockets.map(({ fd, outer }) => {
    const strip =
      tunnel.type === "gre"
        ? outer === 4
          ? innerFromGre4
          : innerFromGreHeader
        : outer === 4
          ? innerFromIpv4
          : innerFromIpv6;
    return native.poll(fd, READABLE, () => {
      for (let round = 0; round < 4; round++) {
        const got = native.recvBatch(fd, buf, SLOT, 0, BATCH, meta);
        if (got <= 0) return;
        let n = 0;
        for (let i = 0; i < got; i++) {
          const inner = strip(buf, i * SLOT, Math.min(meta[i * 4] as number, SLOT), vip);
          if (!inner) {
            counters.rejected++;
            continue;
          }
          desc[n * 2] = inner[0];
          desc[n * 2 + 1] = inner[1];
          n++;
        }
        const written = n > 0 ? native.writeBatch(tun, buf, desc, n) : 0;
        counters.decapsulated += Math.max(0, written);
        counters.writeErrors += n - Math.max(0, written);
      }
    });
  });
  for (const sock of udp) {
    const one = new Int32Array(2);
    sock.on("message", (msg: Buffer) => {
      const n = Math.min(msg.length, SLOT);
      msg.copy(buf, 0, 0, n);
      const inner = innerFromGue(buf, 0, n, vip);
      if (!inner) {
        counters.rejected++;
        return;
      }
      one[0] = inner[0];
      one[1] = inner[1];
      const written = native.writeBatch(tun, buf, one, 1);
      if (written === 1) counters.decapsulated++;
      else counters.writeErrors++;
    });
  }
  await new Promise<void>((resolve) => {
    process.once("SIGTERM", resolve);
    process.once("SIGINT", resolve);
  });
  for (const sock of udp) sock.close();
  for (const id of polls) native.pollStop(id);
  for (const s of sockets) native.close(s.fd);
  native.close(tun);
  process.stderr.write(`${JSON.stringify({ msg: "decapsulator stopped", device: name, ...counters })}\n`);
  return 0;
}

/**
 * UDP sockets on the GUE port: the VIP's own family is required, the other outer family (mixed
 * family tunnels) is opened when the host has it.
 */
async function openGueSockets(port: number, v6: boolean): Promise<Socket[]> {
  const out: Socket[] = [];
  for (const type of v6 ? (["udp6", "udp4"] as const) : (["udp4", "udp6"] as const)) {
    const sock = createSocket({ type, ipv6Only: type === "udp6" });
    try {
      await new Promise<void>((resolve, reject) => {
        sock.once("error", reject);
        sock.bind(port, () => {
          sock.off("error", reject);
          resolve();
        });
      });
      out.push(sock);
    } catch (e) {
      sock.close();
      if (out.length === 0) throw new Error(`Cannot receive GUE on UDP port ${port}: ${(e as Error).message}`);
    }
  }
  return out;
}
