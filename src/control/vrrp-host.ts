// The real system under the VRRP engine (src/vrrp/io.ts), for tvsd:
// - NativeVrrpHost: raw IP protocol 112 sockets through the native addon, bound to the interface
//   (SO_BINDTODEVICE). IPv4 builds its own IP header (IP_HDRINCL: TTL 255, TOS 0xc0 as keepalived,
//   the configured source) and reads TTL and destination from the header it receives. IPv6 lets the
//   kernel compute and verify the checksum (IPV6_CHECKSUM at offset 6), sends with hop limit 255
//   and reads the hop limit and destination from ancillary data. Multicast joins 224.0.0.18 /
//   ff02::12 on the interface only (IP_MULTICAST_ALL off) and does not loop back. Link state comes
//   from sysfs; gratuitous ARP goes out on a packet socket, unsolicited NA on a raw ICMPv6 socket.
// - KernelVips (socket data plane): `ip addr add/del` with the line's dev, label, brd and scope
//   (IPv6 without DAD), then the plane binds services waiting for that VIP.
// - PlaneVips (packet data plane): the plane's own ARP/ND answering is switched per VIP.

import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { networkInterfaces } from "node:os";
import { loadNative, type NativeAddon } from "../platform/native-addon.ts";
import { ipv4Bytes, ipv6Bytes, splitIpv4 } from "../vrrp/codec.ts";
import { garpFrame, unsolicitedNa } from "../vrrp/garp.ts";
import type { ChannelOptions, RxDatagram, VipDriver, VrrpChannel, VrrpHost, VrrpLog } from "../vrrp/io.ts";
import type { VirtualAddress as VipSpec } from "../vrrp/spec.ts";
import type { DataPlane } from "./dataplane.ts";

const IFF_UP = 0x1;

function ifname(name: string): Buffer {
  return Buffer.from(`${name}\0`);
}

export class NativeVrrpHost implements VrrpHost {
  readonly #n: NativeAddon;
  readonly #log: VrrpLog;
  readonly #arp = new Map<string, number>();
  readonly #icmp6 = new Map<string, number>();

  constructor(log: VrrpLog, native: NativeAddon = loadNative()) {
    this.#n = native;
    this.#log = log;
  }

  open(opts: ChannelOptions, onRx: (rx: RxDatagram) => void): VrrpChannel {
    const n = this.#n;
    const k = n.constants as Record<string, number>;
    const info = n.ifInfo(opts.iface);
    const fd = n.openRawIp(opts.family, 112);
    const set = (level: number, name: number, v: number | Uint8Array) => n.setsockopt(fd, level, name, v);
    let pollId: number | undefined;
    try {
      set(k.SOL_SOCKET as number, k.SO_BINDTODEVICE as number, ifname(opts.iface));
      if (opts.family === 4) {
        const IP = k.IPPROTO_IP as number;
        set(IP, k.IP_HDRINCL as number, 1);
        set(IP, k.IP_MULTICAST_LOOP as number, 0);
        set(IP, k.IP_MULTICAST_ALL as number, 0);
        const mreqn = Buffer.alloc(12);
        Buffer.from(ipv4Bytes("224.0.0.18") as Uint8Array).copy(mreqn, 0);
        mreqn.writeInt32LE(info.index, 8);
        set(IP, k.IP_MULTICAST_IF as number, mreqn);
        if (opts.multicast) set(IP, k.IP_ADD_MEMBERSHIP as number, mreqn);
      } else {
        const IP6 = k.IPPROTO_IPV6 as number;
        set(IP6, k.IPV6_CHECKSUM as number, 6);
        set(IP6, k.IPV6_RECVHOPLIMIT as number, 1);
        set(IP6, k.IPV6_RECVPKTINFO as number, 1);
        set(IP6, k.IPV6_MULTICAST_HOPS as number, 255);
        set(IP6, k.IPV6_UNICAST_HOPS as number, 255);
        set(IP6, k.IPV6_MULTICAST_LOOP as number, 0);
        set(IP6, k.IPV6_MULTICAST_IF as number, info.index);
        if (opts.multicast) {
          const mreq = Buffer.alloc(20);
          Buffer.from(ipv6Bytes("ff02::12") as Uint8Array).copy(mreq, 0);
          mreq.writeInt32LE(info.index, 16);
          set(IP6, k.IPV6_ADD_MEMBERSHIP as number, mreq);
        }
        n.bindAddr(fd, opts.src, info.index);
      }
    } catch (e) {
      n.close(fd);
      throw new Error(`Cannot open the VRRP socket on ${opts.iface}: ${(e as Error).message}`);
    }
    const buf = Buffer.alloc(65536);
    const drain = () => {
      for (let i = 0; i < 64; i++) {
        let got: ReturnType<NativeAddon["recvMsg"]>;
        try {
          got = n.recvMsg(fd, buf);
        } catch (e) {
          this.#log.warn("VRRP receive failed", { iface: opts.iface, err: (e as Error).message });
          return;
        }
        if (!got) return;
        const [len, src, hops, dst] = got;
        const data = Uint8Array.from(buf.subarray(0, len));
        if (opts.family === 4) {
          const d = splitIpv4(data);
          if (!d || d.protocol !== 112) continue;
          onRx({ payload: d.payload, src: d.src, dst: d.dst, ttl: d.ttl, checksumVerified: false });
        } else {
          onRx({ payload: data, src, dst, ttl: hops, checksumVerified: true });
        }
      }
    };
    pollId = n.poll(fd, k.POLL_READABLE as number, () => drain());
    let ipId = 0;
    return {
      send: (payload, dst) => {
        if (opts.family === 6) {
          const b = Buffer.from(payload);
          const r = n.sendTo(fd, b, 0, b.length, dst);
          if (r !== b.length) throw new Error(`short send to ${dst} (${r} of ${b.length})`);
          return;
        }
        const total = 20 + payload.length;
        const b = Buffer.alloc(total);
        b[0] = 0x45;
        b[1] = 0xc0; // TOS: network control, as keepalived
        b.writeUInt16BE(total, 2);
        ipId = (ipId + 1) & 0xffff;
        b.writeUInt16BE(ipId, 4);
        b[8] = 255;
        b[9] = 112;
        Buffer.from(ipv4Bytes(opts.src) as Uint8Array).copy(b, 12);
        Buffer.from(ipv4Bytes(dst) as Uint8Array).copy(b, 16);
        let sum = 0;
        for (let i = 0; i < 20; i += 2) sum += b.readUInt16BE(i);
        while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
        b.writeUInt16BE(~sum & 0xffff, 10);
        Buffer.from(payload).copy(b, 20);
        const r = n.sendTo(fd, b, 0, total, dst);
        if (r !== total) throw new Error(`short send to ${dst} (${r} of ${total})`);
      },
      close: () => {
        if (pollId !== undefined) n.pollStop(pollId);
        pollId = undefined;
        try {
          n.close(fd);
        } catch {
          // closed already
        }
      },
    };
  }

  interfaceExists(iface: string): boolean {
    return /^[^/\0\s]{1,15}$/.test(iface) && existsSync(`/sys/class/net/${iface}`);
  }

  linkUp(iface: string): boolean {
    try {
      const oper = readFileSync(`/sys/class/net/${iface}/operstate`, "utf8").trim();
      if (oper === "up") return true;
      if (oper !== "unknown") return false;
      // "unknown" (loopback, tun): the administrative flag decides.
      return (this.#n.ifInfo(iface).flags & IFF_UP) !== 0;
    } catch {
      return false;
    }
  }

  primaryAddress(iface: string, family: 4 | 6): string | undefined {
    const list = networkInterfaces()[iface] ?? [];
    if (family === 4) return list.find((a) => a.family === "IPv4")?.address;
    const v6 = list.filter((a) => a.family === "IPv6");
    return (v6.find((a) => a.address.startsWith("fe80:")) ?? v6[0])?.address.split("%")[0];
  }

  announce(iface: string, addrs: readonly string[]): void {
    const n = this.#n;
    const k = n.constants as Record<string, number>;
    const info = n.ifInfo(iface);
    for (const a of addrs) {
      const v4 = ipv4Bytes(a);
      if (v4) {
        let fd = this.#arp.get(iface);
        if (fd === undefined) {
          fd = n.socketPacket();
          n.bindPacket(fd, info.index, k.ETH_P_ARP as number);
          this.#arp.set(iface, fd);
        }
        const frame = Buffer.from(garpFrame(info.mac, v4));
        n.sendBatch(fd, frame, Int32Array.from([0, frame.length]), 1);
        continue;
      }
      const v6 = ipv6Bytes(a);
      if (!v6) continue;
      let fd = this.#icmp6.get(iface);
      if (fd === undefined) {
        fd = n.openRawIp(6, 58);
        n.setsockopt(fd, k.SOL_SOCKET as number, k.SO_BINDTODEVICE as number, ifname(iface));
        n.setsockopt(fd, k.IPPROTO_IPV6 as number, k.IPV6_MULTICAST_HOPS as number, 255);
        n.setsockopt(fd, k.IPPROTO_IPV6 as number, k.IPV6_MULTICAST_IF as number, info.index);
        this.#icmp6.set(iface, fd);
      }
      const na = Buffer.from(unsolicitedNa(info.mac, v6));
      n.sendTo(fd, na, 0, na.length, "ff02::1");
    }
  }

  close(): void {
    for (const fd of [...this.#arp.values(), ...this.#icmp6.values()]) {
      try {
        this.#n.close(fd);
      } catch {
        // closed already
      }
    }
    this.#arp.clear();
    this.#icmp6.clear();
  }
}

function ip(args: string[]): Promise<{ ok: boolean; err: string }> {
  return new Promise((resolve) => {
    execFile("ip", args, { timeout: 10_000 }, (e, _out, stderr) => resolve({ ok: !e, err: String(stderr).trim() }));
  });
}

/** The words of a virtual_ipaddress line `ip addr` understands (brd, scope; label and dev apart). */
function ipAddrOptions(v: VipSpec): string[] {
  const out: string[] = [];
  for (let i = 0; i < v.options.length; i++) {
    const w = v.options[i] as string;
    const next = v.options[i + 1];
    if ((w === "brd" || w === "broadcast" || w === "scope") && next !== undefined) {
      out.push(w === "broadcast" ? "brd" : w, next);
      i++;
    }
  }
  return out;
}

/** Socket data plane: the VIP is an address on the interface; the plane binds what waited for it. */
export class KernelVips implements VipDriver {
  readonly #plane: () => DataPlane | undefined;
  constructor(plane: () => DataPlane | undefined) {
    this.#plane = plane;
  }
  async own(v: VipSpec, iface: string): Promise<void> {
    const fam = v.addr.includes(":") ? "-6" : "-4";
    const args = [fam, "addr", "add", `${v.addr}/${v.prefix}`, "dev", iface, ...ipAddrOptions(v)];
    if (v.label !== undefined) args.push("label", v.label);
    if (fam === "-6") args.push("nodad");
    const r = await ip(args);
    if (!r.ok && !/File exists/i.test(r.err)) throw new Error(`ip ${args.join(" ")}: ${r.err}`);
    await this.#plane()?.setVipOwned?.(v.addr, true);
  }
  async release(v: VipSpec, iface: string): Promise<void> {
    await this.#plane()?.setVipOwned?.(v.addr, false);
    const fam = v.addr.includes(":") ? "-6" : "-4";
    const r = await ip([fam, "addr", "del", `${v.addr}/${v.prefix}`, "dev", iface]);
    if (!r.ok && !/Cannot assign requested address|No such/i.test(r.err))
      throw new Error(`ip addr del ${v.addr}/${v.prefix} dev ${iface}: ${r.err}`);
  }
}

/** Packet data plane: tvsd answers ARP/ND for the VIP itself; switch that per VIP. */
export class PlaneVips implements VipDriver {
  readonly #plane: () => DataPlane | undefined;
  readonly #log: VrrpLog;
  #warned = false;
  constructor(plane: () => DataPlane | undefined, log: VrrpLog) {
    this.#plane = plane;
    this.#log = log;
  }
  async #set(addr: string, owned: boolean): Promise<void> {
    const p = this.#plane();
    if (p?.setVipOwned) await p.setVipOwned(addr, owned);
    else if (!this.#warned) {
      this.#warned = true;
      this.#log.error("This data plane cannot release a VIP: a BACKUP would still answer for it", { addr });
    }
  }
  own(v: VipSpec): Promise<void> {
    return this.#set(v.addr, true);
  }
  release(v: VipSpec): Promise<void> {
    return this.#set(v.addr, false);
  }
}
