// Userspace IPIP decapsulation for TUN-mode real servers on kernels without the ipip module (as on
// this machine): a raw IPv4 socket for protocol 4 receives each IP-in-IP packet the director sent
// (having a raw socket for the protocol also stops the kernel answering "protocol unreachable"),
// the outer header is stripped, and the inner packet — only if it is IPv4 and addressed to this
// host's VIP — is written into a TUN device, where the kernel receives it as if it had arrived on
// the wire and delivers it to the VIP on lo. Replies leave by the normal route, straight to the
// client, as LVS/TUN intends.

import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { parseIpv4 } from "../core/addr.ts";
import { loadNative } from "../dataplane/packet/native-io.ts";

const IPPROTO_IPIP = 4;
const READABLE = 1;

export interface DecapCounters {
  decapsulated: number;
  /** Not IPv4-in-IPv4, truncated, or not addressed to the VIP. */
  rejected: number;
  writeErrors: number;
}

/**
 * Check one received outer packet (at buf[at], len bytes); returns [offset in buf, length] of the
 * inner packet to deliver, or undefined to drop it. Exported for tests.
 */
export function innerPacket(buf: Uint8Array, at: number, len: number, vip: number): [number, number] | undefined {
  if (len < 20 || (buf[at] as number) >> 4 !== 4) return undefined;
  const ihl = ((buf[at] as number) & 15) * 4;
  if (ihl < 20 || buf[at + 9] !== IPPROTO_IPIP || len < ihl + 20) return undefined;
  const inner = at + ihl;
  if ((buf[inner] as number) >> 4 !== 4) return undefined;
  const dst =
    (((buf[inner + 16] as number) << 24) |
      ((buf[inner + 17] as number) << 16) |
      ((buf[inner + 18] as number) << 8) |
      (buf[inner + 19] as number)) >>>
    0;
  if (dst !== vip) return undefined;
  return [inner, len - ihl];
}

/** Run until SIGTERM/SIGINT. */
export async function runDecapsulator(vipText: string, device: string): Promise<number> {
  const vip = parseIpv4(vipText);
  if (vip === undefined) throw new Error(`Invalid VIP "${vipText}"`);
  const native = loadNative();
  const raw = native.openRawIp(4, IPPROTO_IPIP);
  const [tun, name] = native.openTun(device);
  execFileSync("ip", ["link", "set", "dev", name, "up"]);
  writeFileSync(`/proc/sys/net/ipv4/conf/${name}/rp_filter`, "0\n");
  // Batches of up to 64 packets into one preallocated buffer: no allocation per packet.
  const SLOT = 65536;
  const BATCH = 64;
  const buf = Buffer.alloc(SLOT * BATCH);
  const meta = new Int32Array(BATCH * 4);
  const desc = new Int32Array(BATCH * 2);
  const counters: DecapCounters = { decapsulated: 0, rejected: 0, writeErrors: 0 };
  const id = native.poll(raw, READABLE, () => {
    for (let round = 0; round < 4; round++) {
      const got = native.recvBatch(raw, buf, SLOT, 0, BATCH, meta);
      if (got <= 0) return;
      let n = 0;
      for (let i = 0; i < got; i++) {
        const at = i * SLOT;
        const inner = innerPacket(buf, at, Math.min(meta[i * 4] as number, SLOT), vip);
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
  await new Promise<void>((resolve) => {
    process.once("SIGTERM", resolve);
    process.once("SIGINT", resolve);
  });
  native.pollStop(id);
  native.close(raw);
  native.close(tun);
  process.stderr.write(`${JSON.stringify({ msg: "decapsulator stopped", device: name, ...counters })}\n`);
  return 0;
}
