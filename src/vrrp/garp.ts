// The announcements a new VRRP master sends so the segment's ARP / neighbour caches point at it:
// a gratuitous ARP request (IPv4: sender and target are the VIP, broadcast, as keepalived sends)
// and an unsolicited neighbour advertisement (IPv6: Override set, target link-layer address
// option, to all-nodes). Pure byte builders; the host sends them.

/** Ethernet frame of a gratuitous ARP request for `ip` from `mac` (padded to 60 bytes). */
export function garpFrame(mac: Uint8Array, ip: Uint8Array): Uint8Array {
  const f = new Uint8Array(60);
  f.fill(0xff, 0, 6); // broadcast
  f.set(mac.subarray(0, 6), 6);
  f[12] = 0x08;
  f[13] = 0x06; // ARP
  const a = 14;
  f[a + 1] = 1; // Ethernet
  f[a + 2] = 0x08; // IPv4
  f[a + 4] = 6;
  f[a + 5] = 4;
  f[a + 7] = 1; // request
  f.set(mac.subarray(0, 6), a + 8);
  f.set(ip, a + 14);
  f.fill(0xff, a + 18, a + 24);
  f.set(ip, a + 24);
  return f;
}

/** ICMPv6 neighbour advertisement body (checksum left to the kernel's raw ICMPv6 socket). */
export function unsolicitedNa(mac: Uint8Array, target: Uint8Array): Uint8Array {
  const m = new Uint8Array(32);
  m[0] = 136; // neighbour advertisement
  m[4] = 0x20; // Override
  m.set(target, 8);
  m[24] = 2; // target link-layer address
  m[25] = 1; // 8 bytes
  m.set(mac.subarray(0, 6), 26);
  return m;
}
