// PROXY protocol headers (HAProxy's proxy-protocol.txt, versions 1 and 2) that the socket data
// plane can send to a real server ahead of the client's bytes, so the server learns the client's
// address even though its TCP peer is the director. This is an extension over IPVS (which keeps the
// client address in the packets themselves on NAT/DR/TUN); it is off unless configured per service
// or per destination (tvsd --proxy-protocol, see the README).

import { isIPv4 } from "node:net";

export type ProxyProtocolVersion = 1 | 2;

export interface ProxiedAddrs {
  /** Client address and port as the director saw them. */
  caddr: string;
  cport: number;
  /** The virtual address and port the client connected to. */
  vaddr: string;
  vport: number;
}

/** "\r\n\r\n\0\r\nQUIT\n": the fixed 12-byte signature that starts every v2 header. */
const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);

/** Version 1: one text line, "PROXY TCP4 <src> <dst> <sport> <dport>\r\n". */
export function proxyHeaderV1(a: ProxiedAddrs): Buffer {
  const fam = isIPv4(a.caddr) && isIPv4(a.vaddr) ? "TCP4" : "TCP6";
  return Buffer.from(`PROXY ${fam} ${a.caddr} ${a.vaddr} ${a.cport} ${a.vport}\r\n`, "ascii");
}

function v4Bytes(addr: string): number[] {
  return addr.split(".").map(Number);
}

function v6Bytes(addr: string): number[] {
  // Expand "::" and an embedded IPv4 tail into 8 groups, then into 16 bytes.
  let text = addr;
  const dot = text.lastIndexOf(".");
  if (dot !== -1) {
    const colon = text.lastIndexOf(":");
    const [a, b, c, d] = v4Bytes(text.slice(colon + 1)) as [number, number, number, number];
    text = `${text.slice(0, colon + 1)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.includes("::") ? (text.split("::") as [string, string]) : [text, undefined];
  const h = head === "" ? [] : head.split(":");
  const t = tail === undefined || tail === "" ? [] : tail.split(":");
  const groups = tail === undefined ? h : [...h, ...new Array<string>(8 - h.length - t.length).fill("0"), ...t];
  const out: number[] = [];
  for (const g of groups) {
    const n = Number.parseInt(g, 16);
    out.push(n >>> 8, n & 255);
  }
  return out;
}

/** IPv4-mapped form of an IPv4 address, so a mixed pair can travel as TCP6. */
function asV6(addr: string): string {
  return isIPv4(addr) ? `::ffff:${addr}` : addr;
}

/** Version 2: the binary header, PROXY command, TCP or UDP over IPv4 or IPv6. */
export function proxyHeaderV2(a: ProxiedAddrs, protocol: "tcp" | "udp" = "tcp"): Buffer {
  const v4 = isIPv4(a.caddr) && isIPv4(a.vaddr);
  const transport = protocol === "tcp" ? 0x1 : 0x2;
  const family = v4 ? 0x10 : 0x20;
  const src = v4 ? v4Bytes(a.caddr) : v6Bytes(asV6(a.caddr));
  const dst = v4 ? v4Bytes(a.vaddr) : v6Bytes(asV6(a.vaddr));
  const len = src.length + dst.length + 4;
  const out = Buffer.alloc(16 + len);
  V2_SIGNATURE.copy(out, 0);
  out[12] = 0x21; // version 2, command PROXY
  out[13] = family | transport;
  out.writeUInt16BE(len, 14);
  let o = 16;
  for (const b of src) out[o++] = b;
  for (const b of dst) out[o++] = b;
  out.writeUInt16BE(a.cport, o);
  out.writeUInt16BE(a.vport, o + 2);
  return out;
}

export function proxyHeader(version: ProxyProtocolVersion, a: ProxiedAddrs): Buffer {
  return version === 1 ? proxyHeaderV1(a) : proxyHeaderV2(a);
}
