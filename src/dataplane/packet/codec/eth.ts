// Ethernet II frames with an optional 802.1Q tag: field offsets, MAC helpers and the L3 offset.
// MACs are handled as bytes in place; `macText`/`parseMac` exist for configuration and logs.

export const ETH_HLEN = 14;
export const ETH_ZLEN = 60; // minimum frame without FCS; shorter frames are padded before sending
export const ETH_P_IP = 0x0800;
export const ETH_P_ARP = 0x0806;
export const ETH_P_8021Q = 0x8100;
export const ETH_P_IPV6 = 0x86dd;

export const BROADCAST_MAC: Uint8Array = Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff);

/** Where the L3 header starts and its ethertype, skipping one 802.1Q tag; undefined when truncated. */
export interface L2Info {
  ethertype: number;
  l3: number;
  vlan: number; // VLAN id, or -1 when untagged
}

export function parseEth(buf: Uint8Array, off: number, len: number, out: L2Info): boolean {
  if (len < ETH_HLEN) return false;
  let type = (buf[off + 12]! << 8) | buf[off + 13]!;
  let l3 = off + ETH_HLEN;
  let vlan = -1;
  if (type === ETH_P_8021Q) {
    if (len < ETH_HLEN + 4) return false;
    vlan = ((buf[off + 14]! << 8) | buf[off + 15]!) & 0x0fff;
    type = (buf[off + 16]! << 8) | buf[off + 17]!;
    l3 += 4;
  }
  out.ethertype = type;
  out.l3 = l3;
  out.vlan = vlan;
  return true;
}

/** Write destination and source MACs (byte loops: TypedArray.set costs more for 6 bytes). */
export function setMacs(buf: Uint8Array, off: number, dst: Uint8Array, src: Uint8Array): void {
  for (let i = 0; i < 6; i++) {
    buf[off + i] = dst[i]!;
    buf[off + 6 + i] = src[i]!;
  }
}

export function macEquals(buf: Uint8Array, off: number, mac: Uint8Array): boolean {
  for (let i = 0; i < 6; i++) if (buf[off + i] !== mac[i]) return false;
  return true;
}

export function isBroadcast(buf: Uint8Array, off: number): boolean {
  return macEquals(buf, off, BROADCAST_MAC);
}

export function isMulticastMac(buf: Uint8Array, off: number): boolean {
  return (buf[off]! & 1) === 1;
}

export function macText(mac: Uint8Array, off = 0): string {
  const parts: string[] = [];
  for (let i = 0; i < 6; i++) parts.push(mac[off + i]!.toString(16).padStart(2, "0"));
  return parts.join(":");
}

export function parseMac(text: string): Uint8Array {
  const m =
    /^([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})$/i.exec(text);
  if (!m) throw new RangeError(`Invalid MAC address "${text}"`);
  return Uint8Array.from(m.slice(1, 7).map((h) => Number.parseInt(h, 16)));
}

/** Write an Ethernet header (untagged). */
export function writeEth(buf: Uint8Array, off: number, dst: Uint8Array, src: Uint8Array, type: number): void {
  buf.set(dst, off);
  buf.set(src, off + 6);
  buf[off + 12] = type >>> 8;
  buf[off + 13] = type & 0xff;
}
