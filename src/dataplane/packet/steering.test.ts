// The fanout steering program: the classic-BPF interpreter (cbpf.ts) running steeringProgram(plan)
// must return exactly steerValue(plan, frame) on many generated frames (seeded: TCP, UDP, SCTP, IP
// options, fragments, ICMP errors quoting each direction, ICMP echo, ARP, VLAN, truncated frames,
// and the same kinds over IPv6: extension headers, fragment headers, ICMPv6 errors), and the
// decision must have the properties the workers rely on: a NAT request and its reply, and ICMP
// errors about either, land on the same worker for N = 2, 3, 4 (IPv4 and IPv6); every fragment of
// an IPv6 datagram, of either direction, lands on one worker; a FULLNAT reply to laddr:lport gives
// lport; with byAddress every port (and every address of the persistence netmask) of a client
// lands on one worker; clients spread evenly.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { formatIpv4 } from "../../core/addr.ts";
import { mulberry32 as rng } from "../../core/seeded-random.ts";
import { checkCbpf, decodeCbpf, runCbpf } from "./cbpf.ts";
import {
  arpFrame,
  ETH_P_IPV6,
  eth,
  type Ipv4Opts,
  icmp,
  icmpv6,
  ipv4,
  ipv6,
  tcp,
  tcp4Frame,
  tcp6Frame,
  udp,
} from "./frame-builder.ts";
import {
  MAX_STEERING_INSNS,
  ownsLocalPort,
  type SteeringPlan,
  steerFlow,
  steeringFallback,
  steeringHash,
  steeringProgram,
  steerTuple,
  steerValue,
} from "./steering.ts";

const MAC_D = "02:00:00:00:00:01";
const MAC_C = "02:00:00:00:00:02";
const TCP = 6;
const UDP = 17;
const SCTP = 132;
const ICMP = 1;

const VIPS = ["10.0.0.10", "10.0.0.11", "10.0.0.12"];
const LOCALS = ["10.0.1.100", "10.0.1.101"];
const RS = ["10.0.2.1", "10.0.2.2", "10.0.2.3"];
// IPv6 VIPs that share three words with each other (and with a client prefix) so the word-by-word
// match has to look at every word.
const VIPS6 = ["2001:db8::10", "2001:db8::11", "2001:db8:0:1::10", "fd00::10"];
const LOCALS6 = ["2001:db8::100", "2001:db8::101"];
const RS6 = ["2001:db8:2::1", "2001:db8:2::2"];
const ALL_VIPS = [...VIPS, ...VIPS6];
const ALL_LOCALS = [...LOCALS, ...LOCALS6];

const plain: SteeringPlan = { vips: ALL_VIPS, locals: ALL_LOCALS, byAddress: false, mask: 0xffffffff };
const persistent: SteeringPlan = {
  vips: ALL_VIPS,
  locals: ALL_LOCALS,
  byAddress: true,
  mask: 0xffffff00,
  byAddress6: true,
  prefix6: 64,
};
const persistent32: SteeringPlan = {
  vips: ALL_VIPS,
  locals: ALL_LOCALS,
  byAddress: true,
  mask: 0xffffffff,
  byAddress6: true,
  prefix6: 128,
};

/** An L4 header with ports for any port protocol (SCTP: ports then a zero tag and checksum). */
function l4(proto: number, src: string, dst: string, sport: number, dport: number): Uint8Array {
  if (proto === TCP) return tcp(src, dst, { sport, dport, flags: 0x10 });
  if (proto === UDP) return udp(src, dst, sport, dport, new Uint8Array(6));
  const b = Buffer.alloc(12);
  b.writeUInt16BE(sport, 0);
  b.writeUInt16BE(dport, 2);
  return b;
}

function packet(proto: number, src: string, dst: string, sport: number, dport: number, o: Ipv4Opts = {}): Buffer {
  return ipv4(src, dst, proto, l4(proto, src, dst, sport, dport), o);
}

function frame(proto: number, src: string, dst: string, sport: number, dport: number, o: Ipv4Opts = {}): Buffer {
  return eth(MAC_D, MAC_C, 0x0800, packet(proto, src, dst, sport, dport, o));
}

/** An ICMP error from `from` to `to` quoting the first 28 bytes of `quoted`. */
function icmpError(from: string, to: string, type: number, quoted: Uint8Array): Buffer {
  const q = quoted.subarray(0, Math.min(quoted.length, (quoted[0]! & 0xf) * 4 + 8));
  return eth(MAC_D, MAC_C, 0x0800, ipv4(from, to, ICMP, icmp(type, type === 3 ? 4 : 0, 1400, q)));
}

/** An IPv6 packet with a transport header straight after the fixed header. */
function packet6(proto: number, src: string, dst: string, sport: number, dport: number): Buffer {
  return ipv6(src, dst, proto, l4(proto, src, dst, sport, dport));
}

function frame6(proto: number, src: string, dst: string, sport: number, dport: number): Buffer {
  return eth(MAC_D, MAC_C, ETH_P_IPV6, packet6(proto, src, dst, sport, dport));
}

/** One fragment of an IPv6 datagram: a fragment header (offset in bytes) before `data`. */
function fragment6(
  src: string,
  dst: string,
  next: number,
  offset: number,
  more: boolean,
  id: number,
  data: Uint8Array,
) {
  const fh = Buffer.alloc(8);
  fh[0] = next;
  fh.writeUInt16BE((offset & 0xfff8) | (more ? 1 : 0), 2);
  fh.writeUInt32BE(id >>> 0, 4);
  return eth(MAC_D, MAC_C, ETH_P_IPV6, ipv6(src, dst, 44, Buffer.concat([fh, data])));
}

/** A hop-by-hop options header (8 bytes, PadN) before the transport header. */
function withHopByHop(proto: number, src: string, dst: string, sport: number, dport: number): Buffer {
  const hbh = Buffer.from([proto, 0, 1, 4, 0, 0, 0, 0]);
  return eth(MAC_D, MAC_C, ETH_P_IPV6, ipv6(src, dst, 0, Buffer.concat([hbh, l4(proto, src, dst, sport, dport)])));
}

/** An ICMPv6 error from `from` to `to` quoting `quoted` (all of it, as the first 1232 bytes would). */
function icmp6Error(from: string, to: string, type: number, quoted: Uint8Array): Buffer {
  const body = Buffer.concat([Buffer.from([0, 0, 5, 0]), quoted]);
  return eth(MAC_D, MAC_C, ETH_P_IPV6, ipv6(from, to, 58, icmpv6(from, to, type, 0, body)));
}

function randomClient6(r: () => number): string {
  const h = () => Math.floor(r() * 0x10000).toString(16);
  return `2001:db8:${h()}:${h()}:${h()}:${h()}:${h()}:${h()}`;
}

/** An IPv4 header with `words` 32-bit option words (NOPs) before the payload. */
function withOptions(src: string, dst: string, proto: number, payload: Uint8Array, words: number): Buffer {
  const plainIp = ipv4(src, dst, proto, payload);
  const hl = 20 + words * 4;
  const b = Buffer.alloc(hl + payload.length, 1);
  plainIp.copy(b, 0, 0, 20);
  b[0] = 0x40 | (hl / 4);
  b.writeUInt16BE(b.length, 2);
  b.set(payload, hl);
  return b;
}

function randomClient(r: () => number): string {
  return formatIpv4(((192 << 24) | (Math.floor(r() * 0xffff) << 8) | (1 + Math.floor(r() * 250))) >>> 0);
}
const randomPort = (r: () => number) => 1024 + Math.floor(r() * 64000);
const pick = <T>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;

/** Run the generated program on a frame with the interpreter, skb->data at the network header or the MAC header. */
function programValue(plan: SteeringPlan, f: Uint8Array, dataAt: "network" | "mac" = "network"): number {
  return runCbpf(steeringProgram(plan), { buf: f, off: 0, len: f.length, dataAt });
}

const value = (plan: SteeringPlan, f: Uint8Array) => steerValue(plan, f, 0, f.length);

describe("the program is what the kernel accepts", () => {
  test("small, checked, and byte-identical for equal plans", () => {
    for (const plan of [plain, persistent, { vips: [], locals: [], byAddress: false, mask: 0 }]) {
      const insns = decodeCbpf(steeringProgram(plan));
      checkCbpf(insns);
      // IPv4 (about 100) plus IPv6 (about 90, and 9 per IPv6 address: 6 here).
      assert.ok(insns.length < 300, `${insns.length} instructions`);
    }
    assert.deepEqual(steeringProgram(plain), steeringProgram({ ...plain }));
    assert.notDeepEqual(steeringProgram(plain), steeringProgram(persistent));
  });

  test("a few hundred VIPs fit; thousands fall back to worker 0", () => {
    const many = (n: number) => Array.from({ length: n }, (_, i) => formatIpv4((0x0a100000 + i) >>> 0));
    const big: SteeringPlan = { vips: many(300), locals: LOCALS, byAddress: false, mask: 0 };
    const insns = decodeCbpf(steeringProgram(big));
    checkCbpf(insns);
    assert.ok(insns.length < 500, `${insns.length} instructions`); // 300 + the IPv4 and IPv6 code
    assert.equal(steeringFallback(big), false);
    const huge: SteeringPlan = { vips: many(3800), locals: LOCALS, byAddress: false, mask: 0 };
    assert.equal(steeringFallback(huge), false);
    assert.ok(decodeCbpf(steeringProgram(huge)).length <= MAX_STEERING_INSNS);
    const tooMany: SteeringPlan = { vips: many(4100), locals: LOCALS, byAddress: false, mask: 0 };
    assert.equal(steeringFallback(tooMany), true);
    assert.equal(decodeCbpf(steeringProgram(tooMany)).length, 1);
    // The last VIP of the big plans still steers by the client, and the fallback sends all to 0.
    const req = frame(TCP, "192.168.7.7", formatIpv4(0x0a100000 + 3799), 40000, 80);
    const reply = frame(TCP, "10.0.2.1", "192.168.7.7", 80, 40000);
    assert.equal(programValue(huge, req), value(huge, req));
    assert.equal(value(huge, req), value(huge, reply));
    assert.equal(programValue(tooMany, req), 0);
    assert.equal(value(tooMany, req), 0);
  });

  test("IPv6 VIPs and locals are in the program; hundreds fit; bad input is refused with the value quoted", () => {
    const v4only: SteeringPlan = { vips: VIPS, locals: LOCALS, byAddress: false, mask: 0xffffffff };
    assert.notDeepEqual(steeringProgram(v4only), steeringProgram(plain));
    const req = frame6(TCP, "2001:db8:9::9", VIPS6[0]!, 40000, 80);
    // Without the VIP in the plan the destination is taken for the client (rule 3).
    assert.notEqual(value(v4only, req), value(plain, req));
    const many6 = (n: number) => Array.from({ length: n }, (_, i) => `2001:db8:1::${(i + 1).toString(16)}`);
    const big6: SteeringPlan = { vips: many6(400), locals: LOCALS6, byAddress: false, mask: 0 };
    assert.equal(steeringFallback(big6), false);
    const last = frame6(UDP, "2001:db8:9::9", "2001:db8:1::190", 5353, 53);
    assert.equal(programValue(big6, last), value(big6, last));
    assert.equal(value(big6, last), value(big6, frame6(UDP, "2001:db8:1:2::3", "2001:db8:9::9", 53, 5353)));
    assert.equal(steeringFallback({ ...big6, vips: many6(460) }), true);
    assert.throws(
      () => steeringProgram({ ...plain, vips: ["2001:db8::zz"] }),
      /Invalid address "2001:db8::zz" in the steering plan's vips/,
    );
    assert.throws(() => steeringProgram({ ...persistent, prefix6: 129 }), /Invalid IPv6 steering prefix "129"/);
    assert.throws(
      () => steeringProgram({ ...plain, vips: ["10.0.0.300"] }),
      /Invalid address "10.0.0.300" in the steering plan's vips/,
    );
    assert.throws(
      () => steeringProgram({ ...plain, locals: ["laddr"] }),
      /Invalid address "laddr" in the steering plan's locals/,
    );
    assert.throws(() => steeringProgram({ ...persistent, mask: -1 }), /Invalid steering mask "-1"/);
    assert.throws(() => steeringProgram({ ...persistent, mask: 2 ** 32 }), /Invalid steering mask "4294967296"/);
  });
});

describe("interpreter(program) == steerValue on generated frames", () => {
  const plans: [string, SteeringPlan][] = [
    ["plain", plain],
    ["byAddress /24", persistent],
    ["byAddress /32", persistent32],
    ["no locals", { vips: ALL_VIPS, locals: [], byAddress: false, mask: 0 }],
    [
      "IPv6 persistence /48 only",
      { vips: ALL_VIPS, locals: ALL_LOCALS, byAddress: false, mask: 0, byAddress6: true, prefix6: 48 },
    ],
    ["nothing known", { vips: [], locals: [], byAddress: false, mask: 0 }],
  ];

  /** A frame of some kind the director can receive, picked at random. */
  function randomFrame(r: () => number): Buffer {
    const client = randomClient(r);
    const cport = randomPort(r);
    const vip = pick(r, VIPS);
    const rs = pick(r, RS);
    const laddr = pick(r, LOCALS);
    const lport = randomPort(r);
    const proto = pick(r, [TCP, UDP, SCTP]);
    const vport = pick(r, [80, 443, 53]);
    const kind = Math.floor(r() * 26);
    const client6 = randomClient6(r);
    const vip6 = pick(r, VIPS6);
    const rs6 = pick(r, RS6);
    const laddr6 = pick(r, LOCALS6);
    switch (kind) {
      case 16:
        return frame6(proto, client6, vip6, cport, vport); // request
      case 17:
        return frame6(proto, rs6, client6, vport, cport); // NAT reply
      case 18:
        return frame6(proto, rs6, laddr6, vport, lport); // FULLNAT reply
      case 19: // ICMPv6 errors: about our reply (quoted src VIP), a FULLNAT packet, a NAT packet
        return pick(r, [
          () => icmp6Error("2001:db8:ff::1", vip6, pick(r, [1, 2, 3, 4]), packet6(proto, vip6, client6, vport, cport)),
          () => icmp6Error(rs6, laddr6, pick(r, [1, 2]), packet6(proto, laddr6, rs6, lport, vport)),
          () => icmp6Error(rs6, client6, 1, packet6(proto, client6, rs6, cport, vport)),
          () => icmp6Error(rs6, client6, 3, ipv6(client6, rs6, 44, new Uint8Array(16))), // quoted fragment
        ])();
      case 20: // first and later fragments, either direction
        return r() < 0.5
          ? fragment6(client6, vip6, proto, 0, true, cport, l4(proto, client6, vip6, cport, vport))
          : fragment6(rs6, client6, proto, 8 * (1 + Math.floor(r() * 100)), r() < 0.5, cport, new Uint8Array(24));
      case 21: // a hop-by-hop header first
        return withHopByHop(proto, client6, vip6, cport, vport);
      case 22: // ICMPv6 echo, neighbour solicitation
        return eth(
          MAC_D,
          MAC_C,
          ETH_P_IPV6,
          ipv6(client6, vip6, 58, icmpv6(client6, vip6, pick(r, [128, 129, 135]), 0, new Uint8Array(20))),
        );
      case 23: // other next headers (GRE, IPv6-in-IPv6) and traffic to an unknown address
        return r() < 0.5
          ? eth(MAC_D, MAC_C, ETH_P_IPV6, ipv6(client6, vip6, pick(r, [41, 47]), new Uint8Array(40)))
          : frame6(proto, client6, "2001:db8:9::9", cport, vport);
      case 24: // IPv6 TCP/UDP with the real server's reply to a FULLNAT local address, quoted
        return icmp6Error(
          rs6,
          laddr6,
          1,
          fragment6(laddr6, rs6, proto, 0, true, 1, l4(proto, laddr6, rs6, lport, vport)).subarray(14),
        );
      case 0:
        return frame(proto, client, vip, cport, vport); // request
      case 1:
        return frame(proto, rs, client, vport, cport); // NAT reply
      case 2:
        return frame(proto, rs, laddr, vport, lport); // FULLNAT reply
      case 3: // ICMP error about our reply to the client (quoted src = VIP)
        return icmpError(
          pick(r, ["172.16.0.1", client]),
          vip,
          pick(r, [3, 4, 5, 11, 12]),
          packet(proto, vip, client, vport, cport),
        );
      case 4: // ICMP error from a real server about a FULLNAT packet (quoted src = laddr)
        return icmpError(rs, laddr, pick(r, [3, 11]), packet(proto, laddr, rs, lport, vport));
      case 5: // ICMP error about a NAT packet to the real server (quoted src = client)
        return icmpError(rs, client, 3, packet(proto, client, rs, cport, vport));
      case 6: // non-first fragment
        return frame(proto, client, vip, cport, vport, { fragOffset: 1 + Math.floor(r() * 100), mf: r() < 0.5 });
      case 7: // first fragment
        return frame(proto, client, vip, cport, vport, { mf: true });
      case 8: // ICMP echo to a VIP, or from a real server
        return r() < 0.5
          ? eth(MAC_D, MAC_C, 0x0800, ipv4(client, vip, ICMP, icmp(8, 0, 0x12340001, new Uint8Array(8))))
          : eth(MAC_D, MAC_C, 0x0800, ipv4(rs, laddr, ICMP, icmp(0, 0, 0x12340001, new Uint8Array(8))));
      case 9: // IP options
        return eth(
          MAC_D,
          MAC_C,
          0x0800,
          withOptions(client, vip, proto, l4(proto, client, vip, cport, vport), 1 + Math.floor(r() * 10)),
        );
      case 10: // ICMP error quoting a packet with options, or a quoted fragment, or quoted ICMP
        if (r() < 0.33)
          return icmpError(rs, client, 3, withOptions(client, rs, proto, l4(proto, client, rs, cport, vport), 2));
        if (r() < 0.5) return icmpError(rs, client, 3, packet(proto, client, rs, cport, vport, { fragOffset: 3 }));
        return icmpError(rs, vip, 11, ipv4(vip, client, ICMP, icmp(0, 0, 1, new Uint8Array(8))));
      case 11:
        return arpFrame("ff:ff:ff:ff:ff:ff", 1, MAC_C, client, "00:00:00:00:00:00", vip);
      case 12:
        return tcp6Frame(MAC_D, MAC_C, client6, vip6, { sport: cport, dport: 80, flags: 2 });
      case 13: {
        // 802.1Q-tagged IPv4 (skb->protocol is 0x8100 when the NIC did not strip the tag)
        const inner = packet(proto, client, vip, cport, vport);
        const b = Buffer.alloc(18 + inner.length);
        Buffer.from(eth(MAC_D, MAC_C, 0x8100, new Uint8Array(0))).copy(b, 0, 0, 14);
        b.writeUInt16BE(0x0064, 14);
        b.writeUInt16BE(0x0800, 16);
        b.set(inner, 18);
        return b;
      }
      case 14: // other IP protocols (GRE, IPIP) and a DR/TUN style request to an unknown address
        return r() < 0.5
          ? eth(MAC_D, MAC_C, 0x0800, ipv4(client, vip, pick(r, [4, 47]), new Uint8Array(24)))
          : frame(proto, client, "10.9.9.9", cport, vport);
      default:
        return frame(proto, client, vip, cport, vport);
    }
  }

  for (const [name, plan] of plans) {
    test(`${name}: 3000 frames, whole and truncated, skb->data at either header`, () => {
      const r = rng(0x5eed + name.length);
      let truncatedZero = 0;
      for (let n = 0; n < 3000; n++) {
        const f = randomFrame(r);
        const want = value(plan, f);
        assert.equal(programValue(plan, f), want, `frame ${n}: ${f.toString("hex")}`);
        assert.equal(programValue(plan, f, "mac"), want, `frame ${n} (data at mac): ${f.toString("hex")}`);
        // The same frame cut short somewhere: both must still agree (a load past the end → 0).
        const cut = 14 + Math.floor(r() * (f.length - 14));
        const short = f.subarray(0, cut);
        const got = programValue(plan, short);
        assert.equal(got, value(plan, short), `frame ${n} cut to ${cut}: ${f.toString("hex")}`);
        if (got === 0) truncatedZero++;
        // And placed at an offset inside a larger buffer.
        const buf = new Uint8Array(f.length + 9);
        buf.set(f, 5);
        assert.equal(steerValue(plan, buf, 5, f.length), want);
      }
      assert.ok(truncatedZero > 100, `some truncated frames lost a needed field (${truncatedZero})`);
    });
  }
});

describe("both directions of a flow meet on one worker", () => {
  const NS = [2, 3, 4];

  test("NAT: request client→VIP, reply RS→client, and ICMP errors about either", () => {
    const r = rng(1);
    for (let n = 0; n < 500; n++) {
      const client = randomClient(r);
      const cport = randomPort(r);
      const vip = pick(r, VIPS);
      const rs = pick(r, RS);
      const proto = pick(r, [TCP, UDP, SCTP]);
      const req = frame(proto, client, vip, cport, 80);
      const reply = frame(proto, rs, client, 8080, cport);
      const errAboutReply = icmpError("172.16.0.1", vip, 3, packet(proto, vip, client, 80, cport));
      const errAboutForward = icmpError(rs, client, 3, packet(proto, client, rs, cport, 8080));
      for (const plan of [plain, persistent]) {
        const v = value(plan, req);
        for (const other of [reply, errAboutReply, errAboutForward]) {
          for (const N of NS) assert.equal(value(plan, other) % N, v % N, `client ${client}:${cport}, N=${N}`);
          assert.equal(programValue(plan, other), programValue(plan, req));
        }
      }
    }
  });

  test("FULLNAT: the reply to laddr:lport returns lport; the worker that took the request owns that lport", () => {
    const r = rng(2);
    for (let n = 0; n < 300; n++) {
      const client = randomClient(r);
      const cport = randomPort(r);
      const laddr = pick(r, LOCALS);
      const rs = pick(r, RS);
      const req = frame(TCP, client, pick(r, VIPS), cport, 80);
      for (const N of NS) {
        const worker = value(plain, req) % N;
        // The worker allocates the first free local port it owns at or above a random start.
        let lport = randomPort(r);
        while (!ownsLocalPort(lport, worker, N)) lport++;
        const reply = frame(TCP, rs, laddr, 80, lport);
        assert.equal(value(plain, reply), lport);
        assert.equal(programValue(plain, reply), lport);
        assert.equal(value(plain, reply) % N, worker);
        const err = icmpError(rs, laddr, 3, packet(TCP, laddr, rs, lport, 80));
        assert.equal(value(plain, err), lport);
        assert.equal(programValue(persistent, err), lport);
      }
    }
  });

  test("byAddress: every port of a client, and every client of one persistence netmask, on one worker", () => {
    const r = rng(3);
    for (let n = 0; n < 200; n++) {
      const client = randomClient(r);
      const vip = pick(r, VIPS);
      const values = new Set<number>();
      for (let i = 0; i < 20; i++) {
        values.add(value(persistent32, frame(pick(r, [TCP, UDP]), client, vip, randomPort(r), 80)));
        values.add(value(persistent32, frame(TCP, pick(r, RS), client, 80, randomPort(r))));
      }
      values.add(
        value(persistent32, eth(MAC_D, MAC_C, 0x0800, ipv4(client, vip, ICMP, icmp(8, 0, 1, new Uint8Array(4))))),
      );
      assert.equal(values.size, 1, `client ${client}`);
      // /24: a neighbour in the same /24 shares the value.
      const neighbour = client.replace(/\.\d+$/, `.${1 + Math.floor(r() * 250)}`);
      assert.equal(
        value(persistent, frame(TCP, neighbour, vip, randomPort(r), 443)),
        value(persistent, frame(UDP, client, vip, randomPort(r), 53)),
      );
    }
  });

  test("without byAddress, ports of one client spread", () => {
    const counts = [0, 0];
    for (let p = 1024; p < 2024; p++) counts[value(plain, frame(TCP, "192.168.5.5", VIPS[0]!, p, 80)) % 2]!++;
    assert.ok(counts[0]! > 400 && counts[1]! > 400, `${counts}`);
  });
});

describe("IPv6: both directions, and every fragment of a datagram, meet on one worker", () => {
  const NS = [2, 3, 4];

  test("NAT: request, reply, ICMPv6 errors about either, and fragments of both directions", () => {
    const r = rng(61);
    for (let n = 0; n < 400; n++) {
      const client = randomClient6(r);
      const cport = randomPort(r);
      const vip = pick(r, VIPS6);
      const rs = pick(r, RS6);
      const proto = pick(r, [TCP, UDP, SCTP]);
      const req = frame6(proto, client, vip, cport, 80);
      const reply = frame6(proto, rs, client, 8080, cport);
      const errAboutReply = icmp6Error("2001:db8:ff::1", vip, 2, packet6(proto, vip, client, 80, cport));
      const errAboutForward = icmp6Error(rs, client, 1, packet6(proto, client, rs, cport, 8080));
      for (const plan of [plain, persistent]) {
        const v = value(plan, req);
        for (const other of [reply, errAboutReply, errAboutForward]) {
          for (const N of NS) assert.equal(value(plan, other) % N, v % N, `client ${client}:${cport}, N=${N}`);
          assert.equal(programValue(plan, other), programValue(plan, req));
        }
        // Fragments: by address alone, so the first (with ports), the middle and the last of a
        // request and of a reply all give one value.
        const id = Math.floor(r() * 2 ** 32);
        const frags = [
          fragment6(client, vip, proto, 0, true, id, l4(proto, client, vip, cport, 80)),
          fragment6(client, vip, proto, 1232, true, id, new Uint8Array(64)),
          fragment6(client, vip, proto, 2464, false, id, new Uint8Array(10)),
          fragment6(rs, client, proto, 0, true, id + 1, l4(proto, rs, client, 8080, cport)),
          fragment6(rs, client, proto, 1448, false, id + 1, new Uint8Array(100)),
          withHopByHop(proto, client, vip, cport, 80),
        ];
        const fv = new Set(frags.map((f) => value(plan, f)));
        assert.equal(fv.size, 1, `fragments of ${client}: ${[...fv]}`);
        assert.deepEqual(new Set(frags.map((f) => programValue(plan, f))), fv);
        // ... and that value is the flow's own when ports play no part (byAddress6).
        if (plan.byAddress6) assert.equal([...fv][0], v);
      }
    }
  });

  test("FULLNAT: the reply to laddr:lport returns lport; its fragments go to worker 0 (port 0)", () => {
    const r = rng(62);
    for (let n = 0; n < 200; n++) {
      const laddr = pick(r, LOCALS6);
      const rs = pick(r, RS6);
      const lport = randomPort(r);
      const reply = frame6(UDP, rs, laddr, 53, lport);
      assert.equal(value(plain, reply), lport);
      assert.equal(programValue(plain, reply), lport);
      const err = icmp6Error(rs, laddr, 1, packet6(UDP, laddr, rs, lport, 53));
      assert.equal(value(plain, err), lport);
      assert.equal(programValue(persistent, err), lport);
      const frag = fragment6(rs, laddr, UDP, 0, true, 7, l4(UDP, rs, laddr, 53, lport));
      assert.equal(value(plain, frag), 0);
      assert.equal(programValue(plain, frag), 0);
    }
  });

  test("byAddress6: every port of a client and every client of the /64 on one worker; ports spread without", () => {
    const r = rng(63);
    for (let n = 0; n < 100; n++) {
      const client = randomClient6(r);
      const vip = pick(r, VIPS6);
      const values = new Set<number>();
      for (let i = 0; i < 10; i++) {
        values.add(value(persistent, frame6(pick(r, [TCP, UDP]), client, vip, randomPort(r), 80)));
        values.add(value(persistent, frame6(TCP, pick(r, RS6), client, 80, randomPort(r))));
      }
      // Another interface identifier in the same /64.
      const sibling = `${client.split(":").slice(0, 4).join(":")}:1:2:3:4`;
      values.add(value(persistent, frame6(TCP, sibling, vip, randomPort(r), 443)));
      assert.equal(values.size, 1, `client ${client}`);
    }
    const counts = [0, 0];
    for (let p = 1024; p < 2024; p++) counts[value(plain, frame6(TCP, "2001:db8:5::5", VIPS6[0]!, p, 80)) % 2]!++;
    assert.ok(counts[0]! > 400 && counts[1]! > 400, `${counts}`);
    // IPv4 persistence alone leaves IPv6 steered by address and port.
    const v4persistent: SteeringPlan = { ...persistent, byAddress6: false };
    const ports = new Set<number>();
    for (let p = 0; p < 50; p++)
      ports.add(value(v4persistent, frame6(TCP, "2001:db8:5::5", VIPS6[0]!, 2000 + p, 80)) % 2);
    assert.equal(ports.size, 2);
  });

  test("1000 random IPv6 clients spread: N=2 within 40-60%, N=3 and 4 within 20% of the fair share", () => {
    for (const N of [2, 3, 4]) {
      const r = rng(64 + N);
      const counts = new Array<number>(N).fill(0);
      for (let n = 0; n < 1000; n++)
        counts[value(plain, frame6(TCP, randomClient6(r), VIPS6[0]!, randomPort(r), 80)) % N]!++;
      for (const c of counts) assert.ok(Math.abs(c / 1000 - 1 / N) <= 0.2 / N, `N=${N}: ${counts}`);
    }
  });
});

describe("spread", () => {
  const share = (plan: SteeringPlan, N: number, make: (r: () => number) => Buffer) => {
    const r = rng(N * 7 + (plan.byAddress ? 1 : 0));
    const counts = new Array<number>(N).fill(0);
    for (let n = 0; n < 1000; n++) counts[value(plan, make(r)) % N]!++;
    return counts.map((c) => c / 1000);
  };
  const requests = (r: () => number) => frame(TCP, randomClient(r), pick(r, VIPS), randomPort(r), 80);
  // Clients of one /16 differing in their low bits only: the hash must still mix.
  const sameSubnet = (r: () => number) =>
    frame(TCP, formatIpv4((0xc0a80000 | Math.floor(r() * 0x10000)) >>> 0), VIPS[0]!, 5000, 80);

  test("1000 random clients, N=2: each worker gets 40-60%", () => {
    for (const plan of [plain, persistent, persistent32])
      for (const s of share(plan, 2, requests)) assert.ok(s >= 0.4 && s <= 0.6, `${s}`);
  });

  test("N=3 and N=4: each worker within 20% of its fair share", () => {
    for (const N of [3, 4])
      for (const plan of [plain, persistent32])
        for (const make of [requests, sameSubnet])
          for (const s of share(plan, N, make)) assert.ok(Math.abs(s - 1 / N) <= 0.2 / N, `N=${N}: ${s}`);
  });
});

describe("helpers", () => {
  test("steerTuple gives what the frame would", () => {
    const r = rng(9);
    for (let n = 0; n < 300; n++) {
      const [src, dst] = pick(r, [
        [randomClient(r), pick(r, VIPS)],
        [pick(r, RS), randomClient(r)],
        [pick(r, RS), pick(r, LOCALS)],
      ] as const);
      const sport = randomPort(r);
      const dport = randomPort(r);
      const f = frame(pick(r, [TCP, UDP, SCTP]), src, dst, sport, dport);
      for (const plan of [plain, persistent]) assert.equal(steerTuple(plan, src, sport, dst, dport), value(plan, f));
    }
    for (let n = 0; n < 200; n++) {
      const [src, dst] = pick(r, [
        [randomClient6(r), pick(r, VIPS6)],
        [pick(r, RS6), randomClient6(r)],
        [pick(r, RS6), pick(r, LOCALS6)],
      ] as const);
      const sport = randomPort(r);
      const dport = randomPort(r);
      const f = frame6(pick(r, [TCP, UDP, SCTP]), src, dst, sport, dport);
      for (const plan of [plain, persistent]) assert.equal(steerTuple(plan, src, sport, dst, dport), value(plan, f));
    }
    assert.throws(() => steerTuple(plain, "2001:db8::1", 1, "2001:db8::zz", 80), /Invalid destination address/);
    assert.throws(
      () => steerTuple(plain, "10.0.0.999", 1, VIPS[0]!, 80),
      /Invalid source address "10.0.0.999" to steer/,
    );
  });

  test("steerFlow: the program's value, except that IPv6 extension headers no longer hide the ports", () => {
    const r = rng(10);
    for (let n = 0; n < 300; n++) {
      const client = randomClient6(r);
      const vip = pick(r, VIPS6);
      const cport = randomPort(r);
      const proto = pick(r, [TCP, UDP, SCTP]);
      for (const plan of [plain, persistent]) {
        const flow = frame6(proto, client, vip, cport, 80);
        const behind = withHopByHop(proto, client, vip, cport, 80);
        assert.equal(steerFlow(plan, flow, 0, flow.length), value(plan, flow));
        assert.equal(steerFlow(plan, behind, 0, behind.length), value(plan, flow), "past the hop-by-hop header");
        assert.equal(value(plan, behind), value(plan, fragment6(client, vip, proto, 0, true, 1, new Uint8Array(8))));
        // Fragments and IPv4 are what the program says.
        const frag = fragment6(client, vip, proto, 8, false, 2, new Uint8Array(8));
        assert.equal(steerFlow(plan, frag, 0, frag.length), value(plan, frag));
        const v4 = frame(proto, randomClient(r), VIPS[0]!, cport, 80);
        assert.equal(steerFlow(plan, v4, 0, v4.length), value(plan, v4));
      }
    }
  });

  test("steeringHash is murmur3's 32-bit finaliser over addr ^ port", () => {
    assert.equal(steeringHash(0, 0), 0);
    assert.equal(steeringHash(1, 0), 0x514e28b7);
    assert.equal(steeringHash(0, 1), 0x514e28b7);
    assert.equal(steeringHash(0xffffffff, 0), 0x81f16f39);
  });

  test("ownsLocalPort partitions the ports among the workers", () => {
    for (const N of [1, 2, 3, 4, 7]) {
      for (let p = 1; p < 2000; p++) {
        const owners = Array.from({ length: N }, (_, i) => i).filter((i) => ownsLocalPort(p, i, N));
        assert.deepEqual(owners, [p % N]);
      }
    }
    assert.throws(() => ownsLocalPort(1000, 2, 2), /Invalid worker index "2" for 2 workers/);
    assert.throws(() => ownsLocalPort(1000, 0, 0), /Invalid worker count "0"/);
  });

  test("frames neither IPv4 nor IPv6, and IPv6 frames too short for the fixed header, go to worker 0", () => {
    const arp = arpFrame("ff:ff:ff:ff:ff:ff", 1, MAC_C, "192.168.1.1", "00:00:00:00:00:00", VIPS[0]!);
    const v6 = tcp6Frame(MAC_D, MAC_C, "2001:db8::1", "2001:db8::10", { sport: 1, dport: 80, flags: 2 });
    for (const f of [
      arp,
      v6.subarray(0, 14 + 39),
      tcp4Frame(MAC_D, MAC_C, "1.1.1.1", "2.2.2.2", { sport: 1, dport: 2, flags: 2 }).subarray(0, 13),
    ]) {
      assert.equal(value(plain, f), 0);
      assert.equal(programValue(plain, f), 0);
    }
    assert.notEqual(value(plain, v6), 0);
    assert.equal(programValue(plain, v6), value(plain, v6));
  });
});

describe("IPv4 VIP prefixes (firewall-mark rules' wider destinations)", () => {
  const nets = [
    { addr: "10.9.0.0", len: 24 },
    { addr: "10.10.0.0", len: 16 },
  ];
  const withNets: SteeringPlan = { ...plain, vipPrefixes: nets };
  const persistentNets: SteeringPlan = { ...persistent, vipPrefixes: nets };

  test("a frame to an address inside a prefix is a client's: request and NAT reply meet, program == model", () => {
    const r = rng(17);
    let apart = 0;
    for (let n = 0; n < 300; n++) {
      const client = randomClient(r);
      const cport = randomPort(r);
      const dst = pick(r, [`10.9.0.${1 + Math.floor(r() * 254)}`, `10.10.${Math.floor(r() * 256)}.7`]);
      const proto = pick(r, [TCP, UDP, SCTP]);
      const req = frame(proto, client, dst, cport, 80);
      const reply = frame(proto, pick(r, RS), client, 80, cport);
      for (const plan of [withNets, persistentNets]) {
        assert.equal(programValue(plan, req), value(plan, req), `program and model agree on ${dst}`);
        assert.equal(programValue(plan, reply), value(plan, reply));
        assert.equal(value(plan, req), value(plan, reply), `client ${client}:${cport} → ${dst}`);
      }
      // Without the prefixes the destination would be taken for the client.
      if (value(plain, req) % 2 !== value(plain, reply) % 2) apart++;
      // Just outside a prefix: not a VIP.
      const outside = frame(proto, client, "10.9.1.5", cport, 80);
      assert.equal(value(withNets, outside), value(plain, outside));
      assert.equal(programValue(withNets, outside), value(withNets, outside));
    }
    assert.ok(apart > 50, `without the prefixes ${apart} of 300 flows would split between two workers`);
  });

  test("byAddress: every port of a client to a prefix address meets on one worker", () => {
    const a = frame(TCP, "192.168.3.4", "10.9.0.8", 40000, 80);
    const b = frame(TCP, "192.168.3.4", "10.9.0.8", 40001, 443);
    assert.equal(value(persistentNets, a), value(persistentNets, b));
    assert.equal(programValue(persistentNets, b), value(persistentNets, b));
  });

  test("hundreds of prefixes fit (blocks of trampolines); a bad prefix is refused with the value quoted", () => {
    const many = Array.from({ length: 250 }, (_, i) => ({ addr: `10.${100 + (i >> 8)}.${i & 255}.0`, len: 24 }));
    const plan: SteeringPlan = { ...plain, vipPrefixes: many };
    checkCbpf(decodeCbpf(steeringProgram(plan)));
    assert.equal(steeringFallback(plan), false);
    const last = frame(TCP, "192.168.9.9", "10.100.249.77", 40000, 80);
    const reply = frame(TCP, "10.0.2.1", "192.168.9.9", 80, 40000);
    assert.equal(programValue(plan, last), value(plan, last));
    assert.equal(value(plan, last), value(plan, reply));
    assert.throws(
      () => steeringProgram({ ...plain, vipPrefixes: [{ addr: "10.0.0.0", len: 33 }] }),
      /Invalid prefix "10.0.0.0\/33" in the steering plan's vipPrefixes/,
    );
    // IPv6 prefixes are not steered (the plane refuses them with several workers).
    assert.deepEqual(steeringProgram({ ...plain, vipPrefixes: [{ addr: "fd00::", len: 64 }] }), steeringProgram(plain));
  });
});
