// The classic-BPF interpreter against programs compiled by tcpdump (captured with `tcpdump -dd`,
// so the opcode values come from libpcap, not from this project), hand-written programs for every
// ALU and jump operation, the negative-offset and ancillary loads, out-of-frame loads, and the
// checker's refusals.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { type CbpfInsn, checkCbpf, decodeCbpf, runCbpf, SKF_AD_OFF, SKF_LL_OFF, SKF_NET_OFF } from "./cbpf.ts";
import { arpFrame, tcp4Frame, udp4Frame } from "./frame-builder.ts";

const MAC_A = "02:00:00:00:00:0a";
const MAC_B = "02:00:00:00:00:0b";

const I = (code: number, jt: number, jf: number, k: number): CbpfInsn => ({ code, jt, jf, k: k >>> 0 });

/** `tcpdump -dd 'ip and tcp dst port 80'` */
const TCPDUMP_TCP_DST_80: CbpfInsn[] = [
  I(0x28, 0, 0, 0x0000000c),
  I(0x15, 0, 8, 0x00000800),
  I(0x30, 0, 0, 0x00000017),
  I(0x15, 0, 6, 0x00000006),
  I(0x28, 0, 0, 0x00000014),
  I(0x45, 4, 0, 0x00001fff),
  I(0xb1, 0, 0, 0x0000000e),
  I(0x48, 0, 0, 0x00000010),
  I(0x15, 0, 1, 0x00000050),
  I(0x6, 0, 0, 0x00040000),
  I(0x6, 0, 0, 0x00000000),
];

/** `tcpdump -dd 'udp and src host 10.1.2.3'` */
const TCPDUMP_UDP_SRC: CbpfInsn[] = [
  I(0x28, 0, 0, 0x0000000c),
  I(0x15, 0, 5, 0x00000800),
  I(0x30, 0, 0, 0x00000017),
  I(0x15, 0, 3, 0x00000011),
  I(0x20, 0, 0, 0x0000001a),
  I(0x15, 0, 1, 0x0a010203),
  I(0x6, 0, 0, 0x00040000),
  I(0x6, 0, 0, 0x00000000),
];

function run(prog: CbpfInsn[], frame: Uint8Array, extra: { protocol?: number; dataAt?: "network" | "mac" } = {}) {
  return runCbpf(prog, { buf: frame, off: 0, len: frame.length, ...extra });
}

function encode(prog: CbpfInsn[]): Uint8Array {
  const out = new Uint8Array(prog.length * 8);
  const v = new DataView(out.buffer);
  const le = new Uint16Array(new Uint8Array([1, 0]).buffer)[0] === 1;
  prog.forEach((i, n) => {
    v.setUint16(n * 8, i.code, le);
    v.setUint8(n * 8 + 2, i.jt);
    v.setUint8(n * 8 + 3, i.jf);
    v.setUint32(n * 8 + 4, i.k, le);
  });
  return out;
}

describe("programs compiled by tcpdump (skb->data at the MAC header)", () => {
  const tcp80 = tcp4Frame(MAC_A, MAC_B, "10.1.2.3", "10.9.9.9", { sport: 1234, dport: 80, flags: 2 });
  const tcp81 = tcp4Frame(MAC_A, MAC_B, "10.1.2.3", "10.9.9.9", { sport: 1234, dport: 81, flags: 2 });
  const udp = udp4Frame(MAC_A, MAC_B, "10.1.2.3", "10.9.9.9", 5000, 80, new Uint8Array(4));
  const udpOther = udp4Frame(MAC_A, MAC_B, "10.1.2.4", "10.9.9.9", 5000, 80, new Uint8Array(4));
  const arp = arpFrame("ff:ff:ff:ff:ff:ff", 1, MAC_B, "10.1.2.3", "00:00:00:00:00:00", "10.9.9.9");
  const frag = tcp4Frame(MAC_A, MAC_B, "10.1.2.3", "10.9.9.9", { sport: 1234, dport: 80, flags: 2 }, { fragOffset: 8 });

  test("tcp dst port 80 accepts only the first TCP fragment to port 80", () => {
    const mac = { dataAt: "mac" as const };
    assert.equal(run(TCPDUMP_TCP_DST_80, tcp80, mac), 0x40000);
    assert.equal(run(TCPDUMP_TCP_DST_80, tcp81, mac), 0);
    assert.equal(run(TCPDUMP_TCP_DST_80, udp, mac), 0);
    assert.equal(run(TCPDUMP_TCP_DST_80, arp, mac), 0);
    assert.equal(run(TCPDUMP_TCP_DST_80, frag, mac), 0);
  });

  test("udp and src host matches the source address word", () => {
    const mac = { dataAt: "mac" as const };
    assert.equal(run(TCPDUMP_UDP_SRC, udp, mac), 0x40000);
    assert.equal(run(TCPDUMP_UDP_SRC, udpOther, mac), 0);
    assert.equal(run(TCPDUMP_UDP_SRC, tcp80, mac), 0);
  });

  test("the byte encoding round-trips through decodeCbpf", () => {
    assert.deepEqual(decodeCbpf(encode(TCPDUMP_TCP_DST_80)), TCPDUMP_TCP_DST_80);
    assert.equal(
      runCbpf(encode(TCPDUMP_TCP_DST_80), { buf: tcp80, off: 0, len: tcp80.length, dataAt: "mac" }),
      0x40000,
    );
    assert.throws(() => decodeCbpf(new Uint8Array(12)), /multiple of 8 bytes, not 12 bytes/);
  });
});

describe("loads", () => {
  const frame = tcp4Frame(MAC_A, MAC_B, "10.1.2.3", "10.9.9.9", { sport: 1234, dport: 80, flags: 2 });

  test("SKF_NET_OFF loads are relative to the network header wherever skb->data points", () => {
    const prog = [I(0x20, 0, 0, SKF_NET_OFF + 16), I(0x16, 0, 0, 0)];
    assert.equal(run(prog, frame), 0x0a090909);
    assert.equal(run(prog, frame, { dataAt: "mac" }), 0x0a090909);
    // Plain offsets move with skb->data.
    const plain = [I(0x20, 0, 0, 16), I(0x16, 0, 0, 0)];
    assert.equal(run(plain, frame), 0x0a090909);
    assert.equal(run(plain, frame, { dataAt: "mac" }), frame.readUInt32BE(16)); // total length and id
  });

  test("SKF_LL_OFF loads read the MAC header", () => {
    const prog = [I(0x28, 0, 0, SKF_LL_OFF + 12), I(0x16, 0, 0, 0)];
    assert.equal(run(prog, frame), 0x0800);
    const mac = [I(0x30, 0, 0, SKF_LL_OFF + 5), I(0x16, 0, 0, 0)];
    assert.equal(run(mac, frame), 0x0a);
  });

  test("indirect loads add X to a negative offset", () => {
    // X = IHL*4 from the network header, then the TCP destination port.
    const prog = [
      I(0x30, 0, 0, SKF_NET_OFF),
      I(0x54, 0, 0, 0xf),
      I(0x64, 0, 0, 2),
      I(0x07, 0, 0, 0),
      I(0x48, 0, 0, SKF_NET_OFF + 2),
      I(0x16, 0, 0, 0),
    ];
    assert.equal(run(prog, frame), 80);
  });

  test("SKF_AD_PROTOCOL is skb->protocol: the ethertype unless told otherwise; SKF_AD_LEN is skb->len", () => {
    const prog = [I(0x20, 0, 0, SKF_AD_OFF + 0), I(0x16, 0, 0, 0)];
    assert.equal(run(prog, frame), 0x0800);
    assert.equal(run(prog, frame, { protocol: 0x86dd }), 0x86dd);
    const len = [I(0x20, 0, 0, SKF_AD_OFF + 1), I(0x16, 0, 0, 0)];
    assert.equal(run(len, frame), frame.length - 14);
    assert.equal(run(len, frame, { dataAt: "mac" }), frame.length);
    assert.equal(run([I(0x80, 0, 0, 0), I(0x16, 0, 0, 0)], frame), frame.length - 14);
  });

  test("a load past the end of the frame ends the program with 0", () => {
    const prog = [I(0x28, 0, 0, SKF_NET_OFF + 38), I(0x6, 0, 0, 7)];
    assert.equal(run(prog, frame), 7); // bytes 38-39 of a 40-byte IP packet
    assert.equal(runCbpf(prog, { buf: frame, off: 0, len: 14 + 39 }), 0);
    const ind = [I(0x01, 0, 0, 100), I(0x50, 0, 0, SKF_NET_OFF), I(0x6, 0, 0, 7)];
    assert.equal(run(ind, frame), 0);
    const before = [I(0x30, 0, 0, SKF_LL_OFF - 1), I(0x6, 0, 0, 7)];
    assert.equal(run(before, frame), 0);
  });

  test("a frame in the middle of a buffer: loads see only buf[off..off+len)", () => {
    const buf = new Uint8Array(frame.length + 20).fill(0xee);
    buf.set(frame, 10);
    const prog = [I(0x20, 0, 0, SKF_NET_OFF + 12), I(0x16, 0, 0, 0)];
    assert.equal(runCbpf(prog, { buf, off: 10, len: frame.length }), 0x0a010203);
    const past = [I(0x30, 0, 0, SKF_LL_OFF + frame.length), I(0x6, 0, 0, 7)];
    assert.equal(runCbpf(past, { buf, off: 10, len: frame.length }), 0);
  });

  test("MSH, scratch memory, TXA", () => {
    const prog = [
      I(0xb1, 0, 0, 0), // X = 4 * (P[0] & 0xf), data at the network header: 0x45 → 20
      I(0x03, 0, 0, 5), // M[5] = X
      I(0x00, 0, 0, 1),
      I(0x61, 0, 0, 5), // X = M[5]
      I(0x87, 0, 0, 0), // A = X
      I(0x02, 0, 0, 6),
      I(0x60, 0, 0, 6),
      I(0x16, 0, 0, 0),
    ];
    assert.equal(run(prog, frame), 20);
  });
});

describe("ALU and jumps", () => {
  const frame = udp4Frame(MAC_A, MAC_B, "10.1.2.3", "10.9.9.9", 1, 2, new Uint8Array(0));
  const alu = (op: number, a: number, b: number, src: "k" | "x") => {
    const prog =
      src === "k"
        ? [I(0x00, 0, 0, a), I(0x04 | op, 0, 0, b), I(0x16, 0, 0, 0)]
        : [I(0x00, 0, 0, a), I(0x01, 0, 0, b), I(0x0c | op, 0, 0, 0), I(0x16, 0, 0, 0)];
    return run(prog, frame);
  };
  const cases: [string, number, number, number, number][] = [
    ["add wraps", 0x00, 0xffffffff, 2, 1],
    ["sub wraps", 0x10, 1, 2, 0xffffffff],
    ["mul keeps the low 32 bits", 0x20, 0x9e3779b1, 0x12345678, Math.imul(0x9e3779b1, 0x12345678) >>> 0],
    ["div is unsigned", 0x30, 0xfffffff0, 16, 0x0fffffff],
    ["or", 0x40, 0xf0f0, 0x0f0f, 0xffff],
    ["and", 0x50, 0xdeadbeef, 0xffff0000, 0xdead0000],
    ["lsh", 0x60, 0x80000001, 1, 2],
    ["rsh is logical", 0x70, 0x80000000, 31, 1],
    ["mod", 0x90, 1000, 7, 1000 % 7],
    ["xor", 0xa0, 0xffff0000, 0x0ff00ff0, 0xf00f0ff0],
  ];
  for (const [name, op, a, b, want] of cases) {
    test(`${name} (K and X forms)`, () => {
      assert.equal(alu(op, a, b, "k"), want);
      assert.equal(alu(op, a, b, "x"), want);
    });
  }

  test("neg, and division by a zero X ends the program with 0", () => {
    assert.equal(run([I(0x00, 0, 0, 5), I(0x84, 0, 0, 0), I(0x16, 0, 0, 0)], frame), -5 >>> 0);
    assert.equal(run([I(0x00, 0, 0, 5), I(0x01, 0, 0, 0), I(0x3c, 0, 0, 0), I(0x6, 0, 0, 9)], frame), 0);
    assert.equal(run([I(0x00, 0, 0, 5), I(0x01, 0, 0, 0), I(0x9c, 0, 0, 0), I(0x6, 0, 0, 9)], frame), 0);
  });

  const jumps: [string, number, number, number, boolean][] = [
    ["jeq equal", 0x10, 7, 7, true],
    ["jeq different", 0x10, 7, 8, false],
    ["jgt is unsigned", 0x20, 0x80000000, 1, true],
    ["jgt equal", 0x20, 5, 5, false],
    ["jge equal", 0x30, 5, 5, true],
    ["jge less", 0x30, 4, 5, false],
    ["jset some bit", 0x40, 0x1001, 0x1000, true],
    ["jset no bit", 0x40, 0x1001, 0x0110, false],
  ];
  for (const [name, op, a, b, taken] of jumps) {
    test(`${name} (K and X forms)`, () => {
      const k = [I(0x00, 0, 0, a), I(0x05 | op, 1, 0, b), I(0x6, 0, 0, 10), I(0x6, 0, 0, 20)];
      const x = [I(0x00, 0, 0, a), I(0x01, 0, 0, b), I(0x0d | op, 1, 0, 0), I(0x6, 0, 0, 10), I(0x6, 0, 0, 20)];
      assert.equal(run(k, frame), taken ? 20 : 10);
      assert.equal(run(x, frame), taken ? 20 : 10);
    });
  }

  test("ja skips k instructions", () => {
    assert.equal(run([I(0x05, 0, 0, 1), I(0x6, 0, 0, 1), I(0x6, 0, 0, 2)], frame), 2);
  });
});

describe("the checker refuses what the kernel refuses", () => {
  const refuse = (prog: CbpfInsn[], re: RegExp) => assert.throws(() => checkCbpf(prog), re);
  test("sizes, jumps, the final RET", () => {
    refuse([], /1 to 4096 instructions, not 0/);
    refuse(new Array(4097).fill(I(0x6, 0, 0, 0)), /not 4097/);
    refuse([I(0x05, 0, 0, 1), I(0x6, 0, 0, 0)], /Jump out of the program/);
    refuse([I(0x15, 2, 0, 0), I(0x6, 0, 0, 0)], /Jump out of the program/);
    refuse([I(0x00, 0, 0, 0)], /last instruction must be RET/);
    checkCbpf(new Array(4096).fill(I(0x6, 0, 0, 0)));
  });
  test("constants the kernel refuses, unknown opcodes, scratch slots", () => {
    refuse([I(0x34, 0, 0, 0), I(0x6, 0, 0, 0)], /Division by zero/);
    refuse([I(0x94, 0, 0, 0), I(0x6, 0, 0, 0)], /Division by zero/);
    refuse([I(0x64, 0, 0, 32), I(0x6, 0, 0, 0)], /Unsupported or invalid instruction 0/);
    refuse([I(0xff, 0, 0, 0), I(0x6, 0, 0, 0)], /Unsupported or invalid/);
    refuse([I(0x02, 0, 0, 16), I(0x6, 0, 0, 0)], /Unsupported or invalid/);
    refuse([I(0x20, 0, 0, SKF_AD_OFF + 56), I(0x6, 0, 0, 0)], /Unsupported or invalid/);
    refuse([I(0x60, 0, 0, 3), I(0x6, 0, 0, 0)], /M\[3\] is read before it is written at instruction 0/);
    // Written on one path only.
    refuse(
      [I(0x15, 0, 1, 1), I(0x02, 0, 0, 3), I(0x60, 0, 0, 3), I(0x6, 0, 0, 0)],
      /M\[3\] is read before it is written at instruction 2/,
    );
    checkCbpf([I(0x02, 0, 0, 3), I(0x15, 0, 1, 1), I(0x02, 0, 0, 4), I(0x60, 0, 0, 3), I(0x6, 0, 0, 0)]);
  });
});
