// The fanout steering program in the real kernel: two AF_PACKET sockets on one end of a veth pair
// join one PACKET_FANOUT group in PACKET_FANOUT_CBPF mode (in order: member 0, then member 1),
// the program from steeringProgram() is installed with setFanoutProgram (PACKET_FANOUT_DATA), and
// frames injected from the other end (by a child process inside the test's own namespace) must
// reach the socket steerValue(plan, frame) % 2 names: NAT requests and their replies, FULLNAT
// replies to laddr:lport, ICMP errors about both, and the odd shapes (SCTP, fragments, IP options,
// echo, ICMP errors quoting laddr or a fragment, ARP), and the same over IPv6 (requests and
// replies, FULLNAT replies, ICMPv6 errors, fragments of both directions, a hop-by-hop header). That proves the kernel accepts the program, that
// the SKF_NET_OFF loads and SKF_AD_PROTOCOL work on a received skb, and that it agrees with the
// TypeScript decision. The program is then replaced (a persistent plan) while the sockets stay
// joined, as the packet plane does when services change. Needs root and the built addon.
//
// The injected frames carry a destination MAC that is not the near end's, so the host's IP stack
// drops them as PACKET_OTHERHOST; nothing leaves the veth pair.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { test } from "node:test";
import { promisify } from "node:util";
import {
  arpFrame,
  ETH_P_IPV6,
  eth,
  icmp,
  icmpv6,
  ipv4,
  ipv6,
  tcp,
  tcp6Frame,
  udp,
} from "../../src/dataplane/packet/frame-builder.ts";
import { ownsLocalPort, type SteeringPlan, steeringProgram, steerValue } from "../../src/dataplane/packet/steering.ts";
import { loadNative, nativeAddonPath, nativeStatus } from "../../src/platform/native-addon.ts";

const exec = promisify(execFile);

function skipReason(): string | undefined {
  if (process.platform !== "linux") return "needs Linux";
  if (process.getuid?.() !== 0) return "needs root (CAP_NET_ADMIN for namespaces, CAP_NET_RAW for packet sockets)";
  const s = nativeStatus();
  if (!s.ok) return s.reason;
  if (typeof loadNative().setFanoutProgram !== "function")
    return "the native addon predates setFanoutProgram: run `npm run build:native`";
  return undefined;
}

const skip = skipReason();

const OTHER_MAC = "02:00:5e:00:00:99"; // not the near end's MAC: the host IP stack ignores the frames
const CLIENT_MAC = "02:00:5e:00:00:98";
const VIPS = ["10.78.0.10", "10.78.0.11"];
const LOCALS = ["10.78.1.100"];
const RS = ["10.78.2.1", "10.78.2.2"];
const VIPS6 = ["2001:db8:78::10", "2001:db8:78::11"];
const LOCALS6 = ["2001:db8:78:1::100"];
const RS6 = ["2001:db8:78:2::1", "2001:db8:78:2::2"];

/** Sends hex frames given on argv through an AF_PACKET socket on one interface (run inside the namespace). */
const SENDER = `
const [, addonPath, ifname, ...frames] = process.argv;
const n = require(addonPath);
const fd = n.socketPacket();
n.bindPacket(fd, n.ifInfo(ifname).index, n.constants.ETH_P_ALL);
let sent = 0;
for (const hex of frames) {
  const buf = Buffer.from(hex, "hex");
  for (let tries = 0; tries < 100; tries++) {
    const r = n.sendBatch(fd, buf, new Int32Array([0, buf.length]), 1);
    if (r === 1) { sent++; break; }
    if (r < 0) throw new Error("send failed: errno " + -r);
  }
}
n.close(fd);
process.stdout.write(String(sent));
`;

/** A TCP or UDP frame carrying a unique tag in its payload. */
function l4Frame(udpOrTcp: "tcp" | "udp", src: string, dst: string, sport: number, dport: number, tag: number): Buffer {
  const payload = Buffer.alloc(4);
  payload.writeUInt32BE(tag);
  const seg =
    udpOrTcp === "tcp" ? tcp(src, dst, { sport, dport, flags: 0x18, payload }) : udp(src, dst, sport, dport, payload);
  return eth(OTHER_MAC, CLIENT_MAC, 0x0800, ipv4(src, dst, udpOrTcp === "tcp" ? 6 : 17, seg));
}

function icmpError(
  from: string,
  to: string,
  quotedSrc: string,
  quotedDst: string,
  sport: number,
  dport: number,
): Buffer {
  const quoted = ipv4(quotedSrc, quotedDst, 6, tcp(quotedSrc, quotedDst, { sport, dport, flags: 0x10 })).subarray(
    0,
    28,
  );
  return eth(OTHER_MAC, CLIENT_MAC, 0x0800, ipv4(from, to, 1, icmp(3, 3, 0, quoted)));
}

interface Case {
  what: string;
  frame: Buffer;
}

/** NAT requests and replies, FULLNAT replies and ICMP errors for `clients` clients. */
function cases(plan: SteeringPlan, clients: number, seed: number): Case[] {
  const out: Case[] = [];
  for (let i = 0; i < clients; i++) {
    const client = `192.168.${(seed + i) % 250}.${1 + ((i * 37) % 250)}`;
    const cport = 20000 + seed * 1000 + i * 7;
    const vip = VIPS[i % VIPS.length]!;
    const rs = RS[i % RS.length]!;
    const proto = i % 2 ? "udp" : "tcp";
    const tag = seed * 100000 + i * 10;
    const req = l4Frame(proto, client, vip, cport, 80, tag);
    out.push({ what: `request ${client}:${cport} → ${vip}:80`, frame: req });
    out.push({
      what: `NAT reply ${rs}:8080 → ${client}:${cport}`,
      frame: l4Frame(proto, rs, client, 8080, cport, tag + 1),
    });
    // FULLNAT: the worker that got the request allocates an lport it owns.
    const worker = steerValue(plan, req, 0, req.length) % 2;
    let lport = 30000 + i * 3;
    while (!ownsLocalPort(lport, worker, 2)) lport++;
    out.push({
      what: `FULLNAT reply ${rs}:8080 → ${LOCALS[0]}:${lport}`,
      frame: l4Frame(proto, rs, LOCALS[0]!, 8080, lport, tag + 2),
    });
    out.push({
      what: `ICMP error about ${vip}:80 → ${client}:${cport}`,
      frame: icmpError("172.16.9.1", vip, vip, client, 80, cport),
    });
  }
  return out;
}

/** IPv6: requests, replies, FULLNAT replies, ICMPv6 errors, fragments of both directions, a hop-by-hop header. */
function cases6(plan: SteeringPlan, clients: number, seed: number): Case[] {
  const out: Case[] = [];
  const frame6 = (src: string, dst: string, next: number, payload: Uint8Array) =>
    eth(OTHER_MAC, CLIENT_MAC, ETH_P_IPV6, ipv6(src, dst, next, payload));
  const fragment = (src: string, dst: string, offset: number, more: boolean, id: number, data: Uint8Array) => {
    const fh = Buffer.alloc(8);
    fh[0] = 17;
    fh.writeUInt16BE(offset | (more ? 1 : 0), 2);
    fh.writeUInt32BE(id, 4);
    return frame6(src, dst, 44, Buffer.concat([fh, data]));
  };
  for (let i = 0; i < clients; i++) {
    const client = `2001:db8:${seed.toString(16)}:${i.toString(16)}::${(1 + i * 37).toString(16)}`;
    const cport = 20000 + seed * 1000 + i * 7;
    const vip = VIPS6[i % VIPS6.length]!;
    const rs = RS6[i % RS6.length]!;
    const tag = Buffer.alloc(4);
    tag.writeUInt32BE(seed * 100000 + i * 10);
    const req = frame6(client, vip, 6, tcp(client, vip, { sport: cport, dport: 80, flags: 0x18, payload: tag }));
    out.push({ what: `IPv6 request [${client}]:${cport}`, frame: req });
    out.push({
      what: `IPv6 NAT reply → [${client}]:${cport}`,
      frame: frame6(rs, client, 17, udp(rs, client, 8080, cport, tag)),
    });
    const worker = steerValue(plan, req, 0, req.length) % 2;
    let lport = 30000 + i * 3;
    while (!ownsLocalPort(lport, worker, 2)) lport++;
    out.push({
      what: `IPv6 FULLNAT reply → [${LOCALS6[0]}]:${lport}`,
      frame: frame6(rs, LOCALS6[0]!, 6, tcp(rs, LOCALS6[0]!, { sport: 8080, dport: lport, flags: 0x18, payload: tag })),
    });
    const quoted = ipv6(vip, client, 6, tcp(vip, client, { sport: 80, dport: cport, flags: 0x10 }));
    out.push({
      what: `ICMPv6 packet too big about [${vip}]:80 → [${client}]:${cport}`,
      frame: frame6(
        "2001:db8:ff::1",
        vip,
        58,
        icmpv6("2001:db8:ff::1", vip, 2, 0, Buffer.concat([Buffer.from([0, 0, 5, 0]), quoted, tag])),
      ),
    });
    const id = seed * 1000 + i;
    out.push({
      what: `first fragment from [${client}]`,
      frame: fragment(client, vip, 0, true, id, udp(client, vip, cport, 53, tag)),
    });
    out.push({ what: `last fragment from [${client}]`, frame: fragment(client, vip, 1448, false, id, tag) });
    out.push({ what: `reply fragment to [${client}]`, frame: fragment(rs, client, 2896, true, id + 1, tag) });
    const hbh = Buffer.concat([
      Buffer.from([6, 0, 1, 4, 0, 0, 0, 0]),
      tcp(client, vip, { sport: cport + 1, dport: 80, flags: 2, payload: tag }),
    ]);
    out.push({ what: `hop-by-hop header from [${client}]`, frame: frame6(client, vip, 0, hbh) });
  }
  return out;
}

/** Less common shapes: fragments, SCTP, IP options, ICMP echo, ICMP errors quoting laddr or a fragment, ARP, IPv6. */
function oddities(count: number): Case[] {
  const out: Case[] = [];
  for (let i = 0; i < count; i++) {
    const client = `192.168.77.${10 + i}`;
    const cport = 41000 + i * 13;
    const vip = VIPS[i % VIPS.length]!;
    const rs = RS[i % RS.length]!;
    const tag = Buffer.alloc(4);
    tag.writeUInt32BE(0x0dd00000 + i);
    const sctp = Buffer.concat([Buffer.alloc(12), tag]);
    sctp.writeUInt16BE(cport, 0);
    sctp.writeUInt16BE(80, 2);
    out.push({
      what: `SCTP request ${client}:${cport}`,
      frame: eth(OTHER_MAC, CLIENT_MAC, 0x0800, ipv4(client, vip, 132, sctp)),
    });
    out.push({
      what: `non-first fragment from ${client}`,
      frame: eth(
        OTHER_MAC,
        CLIENT_MAC,
        0x0800,
        ipv4(client, vip, 17, Buffer.concat([Buffer.alloc(16, 0xab), tag]), { fragOffset: 185 }),
      ),
    });
    const opts = ipv4(client, vip, 6, tcp(client, vip, { sport: cport + 1, dport: 80, flags: 2, payload: tag }));
    const withOpts = Buffer.alloc(opts.length + 8, 1); // two NOP option words
    opts.copy(withOpts, 0, 0, 20);
    withOpts[0] = 0x47;
    withOpts.writeUInt16BE(withOpts.length, 2);
    opts.copy(withOpts, 28, 20);
    out.push({
      what: `TCP request with IP options from ${client}`,
      frame: eth(OTHER_MAC, CLIENT_MAC, 0x0800, withOpts),
    });
    out.push({
      what: `echo request ${client} → ${vip}`,
      frame: eth(OTHER_MAC, CLIENT_MAC, 0x0800, ipv4(client, vip, 1, icmp(8, 0, 0x77000000 + i, tag))),
    });
    out.push({
      what: `ICMP error from ${rs} about ${LOCALS[0]}:${cport} → ${rs}:80`,
      frame: icmpError(rs, LOCALS[0]!, LOCALS[0]!, rs, cport, 80),
    });
    const quotedFrag = ipv4(client, rs, 17, Buffer.concat([Buffer.alloc(4), tag]), { fragOffset: 7 }).subarray(0, 28);
    out.push({
      what: `ICMP error quoting a fragment from ${client}`,
      frame: eth(OTHER_MAC, CLIENT_MAC, 0x0800, ipv4(rs, client, 1, icmp(11, 1, 0, quotedFrag))),
    });
  }
  out.push({
    what: "ARP request",
    frame: arpFrame("ff:ff:ff:ff:ff:ff", 1, CLIENT_MAC, "192.168.77.1", "00:00:00:00:00:00", VIPS[0]!),
  });
  out.push({
    what: "IPv6 TCP",
    frame: tcp6Frame(OTHER_MAC, CLIENT_MAC, "2001:db8::1", "2001:db8::10", { sport: 1, dport: 80, flags: 2 }),
  });
  return out;
}

test("the kernel steers frames to the fanout member steerValue names", { skip: skip ?? false }, async (t) => {
  const n = loadNative();
  const C = n.constants;
  const id = randomBytes(3).toString("hex");
  const ns = `tvsst-${id}`;
  const near = `tvsn${id}`;
  const far = `tvsf${id}`;
  const fds: number[] = [];
  t.after(async () => {
    for (const fd of fds) {
      try {
        n.close(fd);
      } catch {}
    }
    await exec("ip", ["link", "del", near]).catch(() => {});
    await exec("ip", ["netns", "del", ns]).catch(() => {});
  });
  await exec("ip", ["netns", "add", ns]);
  await exec("ip", ["link", "add", near, "type", "veth", "peer", "name", far]);
  await exec("ip", ["link", "set", far, "netns", ns]);
  await exec("sysctl", ["-q", "-w", `net.ipv6.conf.${near}.disable_ipv6=1`]).catch(() => {});
  await exec("ip", ["link", "set", near, "up"]);
  await exec("ip", ["netns", "exec", ns, "sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1"]).catch(() => {});
  await exec("ip", ["-n", ns, "link", "set", far, "up"]);

  // Two members, joined in order; the group id is random so parallel runs do not collide.
  const ifindex = n.ifInfo(near).index;
  const group = randomBytes(2).readUInt16BE() | 1;
  for (let i = 0; i < 2; i++) {
    const fd = n.socketPacket();
    fds.push(fd);
    n.bindPacket(fd, ifindex, C.ETH_P_ALL!);
    n.setsockopt(fd, C.SOL_PACKET!, C.PACKET_FANOUT!, group | (C.PACKET_FANOUT_CBPF! << 16));
  }

  const slot = 2048;
  const batch = 64;
  const buf = Buffer.alloc(slot * batch);
  const meta = new Int32Array(batch * 4);

  /** Send the cases from the far end and collect which member got each; bounded in time. */
  async function deliver(plan: SteeringPlan, list: Case[]): Promise<void> {
    const wanted = new Map<string, Case>(list.map((c) => [c.frame.toString("hex"), c]));
    assert.equal(wanted.size, list.length, "every frame is distinct");
    const { stdout } = await exec("ip", [
      "netns",
      "exec",
      ns,
      process.execPath,
      "-e",
      SENDER,
      nativeAddonPath(),
      far,
      ...list.map((c) => c.frame.toString("hex")),
    ]);
    assert.equal(Number(stdout), list.length, "frames sent");
    const got = new Map<string, number>();
    const deadline = Date.now() + 5000;
    while (got.size < wanted.size && Date.now() < deadline) {
      let any = 0;
      for (let member = 0; member < fds.length; member++) {
        const k = n.recvBatch(fds[member]!, buf, slot, 0, batch, meta);
        any += k;
        for (let i = 0; i < k; i++) {
          const len = Math.min(meta[i * 4]!, slot);
          const hex = buf.subarray(i * slot, i * slot + len).toString("hex");
          if (wanted.has(hex)) got.set(hex, member);
        }
      }
      if (!any) await new Promise((r) => setTimeout(r, 10));
    }
    assert.equal(got.size, wanted.size, `frames received by the group: ${got.size} of ${wanted.size}`);
    const perMember = [0, 0];
    for (const [hex, member] of got) {
      const c = wanted.get(hex)!;
      const want = steerValue(plan, c.frame, 0, c.frame.length) % 2;
      assert.equal(member, want, `${c.what}: member ${member}, steerValue says ${want}`);
      perMember[member]!++;
    }
    assert.ok(perMember[0]! > 0 && perMember[1]! > 0, `both members used: ${perMember}`);
  }

  const plain: SteeringPlan = { vips: VIPS, locals: LOCALS, byAddress: false, mask: 0xffffffff };
  n.setFanoutProgram(fds[0]!, steeringProgram(plain));
  const first = cases(plain, 24, 1);
  await deliver(plain, first);
  // The directions of each flow met (this is what steerValue promised; the kernel agreed above).
  for (let i = 0; i < first.length; i += 4) {
    const v = first.slice(i, i + 4).map((c) => steerValue(plain, c.frame, 0, c.frame.length) % 2);
    assert.deepEqual(v, [v[0], v[0], v[0], v[0]], first[i]!.what);
  }

  // Services changed: a persistent service appears. Any member may replace the program.
  const persistent: SteeringPlan = { vips: VIPS, locals: LOCALS, byAddress: true, mask: 0xffffff00 };
  n.setFanoutProgram(fds[1]!, steeringProgram(persistent));
  await deliver(persistent, cases(persistent, 24, 2));

  // A program the kernel refuses (a jump out of the program) leaves the installed one in place.
  const bad = new Uint8Array(16);
  const v = new DataView(bad.buffer);
  const le = new Uint16Array(new Uint8Array([1, 0]).buffer)[0] === 1;
  v.setUint16(0, 0x05, le);
  v.setUint32(4, 5, le);
  v.setUint16(8, 0x06, le);
  assert.throws(() => n.setFanoutProgram(fds[0]!, bad), /PACKET_FANOUT_DATA/);
  await deliver(persistent, cases(persistent, 16, 3));
  await deliver(persistent, oddities(8));
  n.setFanoutProgram(fds[0]!, steeringProgram(plain));
  await deliver(plain, oddities(8));

  // IPv6 spreads too: the plan knows the IPv6 VIPs and local address.
  const both: SteeringPlan = { vips: [...VIPS, ...VIPS6], locals: [...LOCALS, ...LOCALS6], byAddress: false, mask: 0 };
  n.setFanoutProgram(fds[0]!, steeringProgram(both));
  const six = cases6(both, 16, 4);
  await deliver(both, six);
  // Per client: request, NAT reply, ICMPv6 error, and all three fragments on one member.
  for (let i = 0; i < six.length; i += 8) {
    const v = [0, 1, 3, 4, 5, 6].map((k) => steerValue(both, six[i + k]!.frame, 0, six[i + k]!.frame.length) % 2);
    assert.deepEqual(v.slice(0, 3), [v[0], v[0], v[0]], six[i]!.what);
    assert.deepEqual(v.slice(3), [v[3], v[3], v[3]], `fragments: ${six[i]!.what}`);
  }
  const persistent6: SteeringPlan = { ...both, byAddress6: true, prefix6: 64 };
  n.setFanoutProgram(fds[1]!, steeringProgram(persistent6));
  await deliver(persistent6, cases6(persistent6, 16, 5));
});

// A fact the workers depend on, checked here because it surprised us: the per-socket
// PACKET_IGNORE_OUTGOING does not apply once a socket is in a fanout group (the group has its own
// hook). Frames a member sends itself are not looped back to the group, but frames anyone else
// sends on the interface (the host's own stack, another packet socket) reach a member as
// PACKET_OUTGOING unless the join sets PACKET_FANOUT_FLAG_IGNORE_OUTGOING (0x4000, Linux 4.20).
test(
  "outgoing frames of other sockets reach a fanout group unless it joined with PACKET_FANOUT_FLAG_IGNORE_OUTGOING",
  {
    skip: skip ?? false,
  },
  async (t) => {
    const n = loadNative();
    const C = n.constants;
    const FLAG_IGNORE_OUTGOING = 0x4000;
    const id = randomBytes(3).toString("hex");
    const a = `tvsoa${id}`;
    const b = `tvsob${id}`;
    const fds: number[] = [];
    t.after(async () => {
      for (const fd of fds) {
        try {
          n.close(fd);
        } catch {}
      }
      await exec("ip", ["link", "del", a]).catch(() => {});
    });
    await exec("ip", ["link", "add", a, "type", "veth", "peer", "name", b]);
    await exec("sysctl", ["-q", "-w", `net.ipv6.conf.${a}.disable_ipv6=1`]).catch(() => {});
    await exec("sysctl", ["-q", "-w", `net.ipv6.conf.${b}.disable_ipv6=1`]).catch(() => {});
    await exec("ip", ["link", "set", a, "up"]);
    await exec("ip", ["link", "set", b, "up"]);
    const ifindex = n.ifInfo(a).index;
    const open = () => {
      const fd = n.socketPacket();
      fds.push(fd);
      n.setsockopt(fd, C.SOL_PACKET!, C.PACKET_IGNORE_OUTGOING!, 1);
      n.bindPacket(fd, ifindex, C.ETH_P_ALL!);
      return fd;
    };
    const sender = open();
    const peer = n.socketPacket();
    fds.push(peer);
    n.bindPacket(peer, n.ifInfo(b).index, C.ETH_P_ALL!);
    const slot = 2048;
    const buf = Buffer.alloc(slot * 64);
    const meta = new Int32Array(64 * 4);
    const seen: Record<string, number[]> = {};
    for (const [name, flags] of [
      ["plain", 0],
      ["ignore-outgoing", FLAG_IGNORE_OUTGOING],
    ] as const) {
      const group = (randomBytes(2).readUInt16BE() | 1) ^ flags;
      const members = [open(), open()];
      for (const fd of members)
        n.setsockopt(fd, C.SOL_PACKET!, C.PACKET_FANOUT!, group | ((C.PACKET_FANOUT_CBPF! | flags) << 16));
      n.setFanoutProgram(members[0]!, steeringProgram({ vips: VIPS, locals: LOCALS, byAddress: false, mask: 0 }));
      const marker = Buffer.from(`tvs-outgoing-${name}-${id}`);
      const f = eth(
        OTHER_MAC,
        CLIENT_MAC,
        0x0800,
        ipv4("10.78.3.1", "10.78.3.2", 17, udp("10.78.3.1", "10.78.3.2", 9, 9, marker)),
      );
      const fromMember = Buffer.concat([f, Buffer.from("m")]);
      assert.equal(n.sendBatch(sender, f, new Int32Array([0, f.length]), 1), 1);
      assert.equal(n.sendBatch(members[0]!, fromMember, new Int32Array([0, fromMember.length]), 1), 1);
      // Copies of outgoing frames are handed to packet sockets inside the sending call; an
      // incoming sentinel sent afterwards from the peer marks the point where all of it is queued.
      const sentinel = eth(
        OTHER_MAC,
        CLIENT_MAC,
        0x0800,
        ipv4("10.78.3.2", "10.78.3.1", 17, udp("10.78.3.2", "10.78.3.1", 9, 9, Buffer.from(`sentinel-${name}-${id}`))),
      );
      assert.equal(n.sendBatch(peer, sentinel, new Int32Array([0, sentinel.length]), 1), 1);
      const types: number[] = [];
      let sentinelSeen = false;
      const deadline = Date.now() + 5000;
      while (!sentinelSeen && Date.now() < deadline) {
        for (const fd of members) {
          const k = n.recvBatch(fd, buf, slot, 0, 64, meta);
          for (let i = 0; i < k; i++) {
            const got = buf.subarray(i * slot, i * slot + meta[i * 4]!);
            if (got.includes(marker)) types.push(meta[i * 4 + 1]!);
            if (got.equals(sentinel)) sentinelSeen = true;
          }
        }
        if (!sentinelSeen) await new Promise((r) => setTimeout(r, 10));
      }
      assert.ok(sentinelSeen, "the sentinel from the peer reached the group");
      seen[name] = types;
    }
    // Plain: the other socket's frame arrives once, as PACKET_OUTGOING; the member's own does not.
    assert.deepEqual(seen.plain, [C.PACKET_OUTGOING], `plain group: ${JSON.stringify(seen)}`);
    assert.deepEqual(seen["ignore-outgoing"], [], `ignore-outgoing group: ${JSON.stringify(seen)}`);
  },
);
