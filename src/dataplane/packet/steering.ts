// The fanout steering program: which packet-plane worker gets each received frame.
//
// Why a program and not PACKET_FANOUT_HASH. The packet plane runs N worker threads, each with its
// own AF_PACKET socket in one PACKET_FANOUT group and its own connection table; a frame must reach
// the worker that holds its connection. The kernel's flow hash keeps one 5-tuple on one worker,
// which is enough for DR and TUN (the director only ever sees client → VIP), but not for NAT and
// FULLNAT: the reply of a NAT connection comes from the real server to the client (RS:rport →
// client:cport), a different 5-tuple from the request (client:cport → VIP:vport), so the hash
// sends it to a worker that has never heard of the connection. tvs therefore joins the group in
// PACKET_FANOUT_CBPF mode and installs a classic BPF program (PACKET_FANOUT_DATA) that returns a
// 32-bit value; the kernel hands the frame to member (value % members) (af_packet.c,
// fanout_demux_bpf), members being numbered in join order, and workers join in order 0..N-1.
// The program is regenerated whenever the services change; the kernel swaps it atomically.
//
// The rule: find the client's side of the frame and hash it, so both directions meet.
//   1. dst is a FULLNAT local address (laddr): a real server's reply to laddr:lport. Return lport
//      itself, so worker = lport % N. This is the worker/local-port contract: worker i allocates
//      only local ports p with p % N == i (ownsLocalPort), so replies land where the connection is.
//   2. dst is a VIP: client → VIP, the client is the source: key (saddr, sport).
//   3. anything else (a NAT reply RS → client, or traffic we do not know): the client is the
//      destination: key (daddr, dport).
//   4. value = hash(clientAddr & mask, clientPort), or with byAddress (some service is persistent:
//      its templates are per client address, so all of a client's connections must meet on one
//      worker) hash(clientAddr & mask, 0), mask being the shortest persistence netmask. Without
//      byAddress the mask is ignored. The hash is murmur3's 32-bit finaliser over addr ^ port:
//      every output bit depends on every input bit, so value % N spreads for any small N (a plain
//      multiply would leave the low bits depending on the low input bits only).
//   5. ICMP errors (types 3, 4, 5, 11, 12) quote a packet the director itself sent: steer by the
//      quoted header. Quoted src a local address → return its sport (the lport); quoted src a VIP
//      (our reply to a client) → client = quoted dst/dport; otherwise (a packet we forwarded on
//      the client's behalf) → client = quoted src/sport. The quoted ports are read only when the
//      quoted protocol has them and the quoted packet is a first fragment, else port 0.
//      Other ICMP (echo and the like) has no ports: rules 1-3 with port 0 (a local address as
//      destination then returns 0: worker 0).
//   6. TCP, UDP and SCTP carry ports at l4+0 and l4+2; other protocols and non-first IPv4
//      fragments (offset != 0) use port 0. A fragmented datagram can therefore be split between
//      workers (the first fragment hashed with its port, the rest without); the plane does not
//      reassemble anyway, so such traffic is not load-balanced correctly in any case.
//   ARP, VLAN-tagged frames the NIC did not untag and everything else neither IPv4 nor IPv6
//   return 0: worker 0.
//
// IPv6 follows the same rules with 128-bit addresses: the plan's IPv6 VIPs and local addresses
// are matched word by word (four 32-bit words each, the last word first since it differs most),
// and the client's address is folded to 32 bits (the XOR of its words, masked word by word to
// the shortest IPv6 persistence prefix when byAddress6) before the same finaliser, so
// value = steeringHash(fold(client), clientPort). Ports are read only when the fixed header's
// next header is TCP, UDP or SCTP (at l3 + 40), and an ICMPv6 error (types 1-4) is steered by
// the packet it quotes (at l3 + 48, its ports at l3 + 88 when the quoted next header has them).
// Anything with an extension header first — hop-by-hop, routing, destination options and above
// all a fragment header — is steered by addresses alone (port 0): the program cannot afford a
// walk over the header chain, and, more important, every fragment of one datagram then reaches
// the same worker whichever its offset, as do both directions' fragments of a NAT flow (the
// client is the same address either way). That worker reassembles the datagram
// (ipv6-reassembly.ts) and, when the whole datagram's own steering value (ports now visible)
// names another worker, hands it over (ipv6-defrag.ts). A fragment to a FULLNAT local address
// returns port 0 by rule 1: such fragments meet on worker 0, which hands the reassembled reply
// to the owner of its lport.
//
// The program reads through SKF_NET_OFF (loads relative to the network header), so it does not
// matter whether skb->data points at the MAC or the network header, and takes the ethertype from
// skb->protocol (SKF_AD_PROTOCOL). A load past the end of the frame ends it with 0 (the kernel's
// rule), and steerValue mirrors that: a truncated frame goes to worker 0.
//
// Size: the VIP and local lists are tested with chains of JEQs in blocks (one instruction per
// address plus two per block of 200), so about 3,900 addresses fit in the kernel's 4,096
// instructions. IPv4 VIP prefixes (vipPrefixes: firewall-mark rules' wider destinations) follow
// the VIP list as load, AND, JEQ (three instructions each, two more per block of 60), counted in
// the same budget; a frame whose destination is inside one is a client's, like a VIP's. If a plan does not fit, the program falls back to `ret #0`: every frame goes to
// worker 0. That is still correct (only worker 0 creates connections, so only it allocates local
// ports), just not parallel; steeringFallback() tells the plane so it can warn.

import { parseIpv4, parseIpv6Groups } from "../../core/addr.ts";

export interface SteeringPlan {
  vips: readonly string[];
  locals: readonly string[];
  /** Some IPv4 service is persistent: IPv4 clients are steered by address (& mask) alone. */
  byAddress: boolean;
  mask: number /* u32 */;
  /** Some IPv6 service is persistent: IPv6 clients are steered by address alone, to prefix6 bits. */
  byAddress6?: boolean;
  /** The shortest IPv6 persistence prefix (0..128; default 128). */
  prefix6?: number;
  /**
   * IPv4 destination prefixes that count as VIPs (a firewall-mark rule's wider prefix, routed to
   * the director): a frame to an address inside one comes from a client. IPv6 prefixes are not
   * steered (the plane refuses them with several workers).
   */
  vipPrefixes?: readonly { addr: string; len: number }[];
}

/** The kernel's limit on a classic BPF program. */
export const MAX_STEERING_INSNS = 4096;

const ERROR_TYPES = [3, 4, 5, 11, 12] as const;
const PORT_PROTOCOLS = [6, 17, 132] as const;
const ETH_P_IP = 0x0800;
const ETH_P_IPV6 = 0x86dd;
const ICMPV6 = 58;
const ICMPV6_ERROR_TYPES = [1, 2, 3, 4] as const;
const BLOCK = 200;

// Scratch slots: the classified side (C) and the other side (O) of the frame.
const M_CA = 0;
const M_CP = 1;
const M_OA = 2;
const M_OP = 3;
/** IPv6: the classified side's address words in M[4..7], the other side's in M[8..11]. */
const M_C6 = 4;
const M_O6 = 8;

// Opcodes (linux/filter.h: class | size | mode, class | op | src).
const LD_W_ABS = 0x20;
const LD_H_ABS = 0x28;
const LD_B_ABS = 0x30;
const LD_W_IND = 0x40;
const LD_H_IND = 0x48;
const LD_B_IND = 0x50;
const LD_IMM = 0x00;
const LD_MEM = 0x60;
const LDX_MEM = 0x61;
const ST = 0x02;
const ALU_ADD_X = 0x0c;
const ALU_MUL_K = 0x24;
const ALU_AND_K = 0x54;
const ALU_LSH_K = 0x64;
const ALU_RSH_K = 0x74;
const ALU_XOR_X = 0xac;
const JMP_JA = 0x05;
const JMP_JEQ_K = 0x15;
const JMP_JSET_K = 0x45;
const RET_K = 0x06;
const RET_A = 0x16;
const MISC_TAX = 0x07;

const SKF_AD_PROTOCOL = -0x1000 + 0;
const NET = -0x100000;

const HASH_M1 = 0x85ebca6b;
const HASH_M2 = 0xc2b2ae35;

/** The client-key hash; the program computes exactly this. */
export function steeringHash(addr: number, port: number): number {
  let h = (addr ^ port) >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, HASH_M1) >>> 0;
  h ^= h >>> 13;
  h = Math.imul(h, HASH_M2) >>> 0;
  h ^= h >>> 16;
  return h >>> 0;
}

/** Local ports worker `index` of `workers` may allocate: p % workers === index. */
export function ownsLocalPort(port: number, index: number, workers: number): boolean {
  if (!Number.isInteger(workers) || workers < 1) throw new RangeError(`Invalid worker count "${workers}"`);
  if (!Number.isInteger(index) || index < 0 || index >= workers)
    throw new RangeError(`Invalid worker index "${index}" for ${workers} workers`);
  return port % workers === index;
}

// ---------------------------------------------------------------------------------------------
// The plan, validated once

interface Compiled {
  locals: Set<number>;
  vips: Set<number>;
  /** IPv4 VIP prefixes as network and mask. */
  vipNets: readonly { net: number; mask: number }[];
  byAddress: boolean;
  mask: number;
  /** IPv6 addresses as the text of their four words ("w0,w1,w2,w3"). */
  locals6: Set<string>;
  vips6: Set<string>;
  byAddress6: boolean;
  /** Per-word mask of the IPv6 persistence prefix (all ones without byAddress6). */
  mask6: readonly number[];
  program: Uint8Array;
  fallback: boolean;
}

const compiledPlans = new WeakMap<SteeringPlan, Compiled>();

function addresses(list: readonly string[], what: string): number[] {
  const out: number[] = [];
  for (const a of list) {
    if (a.includes(":")) continue; // IPv6: addresses6
    const v = parseIpv4(a);
    if (v === undefined) throw new RangeError(`Invalid address "${a}" in the steering plan's ${what}`);
    out.push(v >>> 0);
  }
  return out;
}

/** The IPv4 prefixes of a plan as network and mask (IPv6 ones are left out). */
function ipv4Nets(list: readonly { addr: string; len: number }[]): { net: number; mask: number }[] {
  const out: { net: number; mask: number }[] = [];
  for (const p of list) {
    if (p.addr.includes(":")) continue;
    const v = parseIpv4(p.addr);
    if (v === undefined || !Number.isInteger(p.len) || p.len < 0 || p.len > 32)
      throw new RangeError(`Invalid prefix "${p.addr}/${p.len}" in the steering plan's vipPrefixes`);
    const mask = p.len === 0 ? 0 : (0xffffffff << (32 - p.len)) >>> 0;
    out.push({ net: (v & mask) >>> 0, mask });
  }
  return out;
}

/** An IPv6 address as four 32-bit words, or undefined when it does not parse. */
function words6(text: string): number[] | undefined {
  const g = parseIpv6Groups(text);
  if (g === undefined) return undefined;
  const out: number[] = [];
  for (let i = 0; i < 8; i += 2) out.push(((g[i]! << 16) | g[i + 1]!) >>> 0);
  return out;
}

function addresses6(list: readonly string[], what: string): number[][] {
  const out: number[][] = [];
  for (const a of list) {
    if (!a.includes(":")) continue;
    const w = words6(a);
    if (w === undefined) throw new RangeError(`Invalid address "${a}" in the steering plan's ${what}`);
    out.push(w);
  }
  return out;
}

/** The four word masks of an IPv6 prefix length. */
function prefixMask6(prefix: number): number[] {
  return [0, 1, 2, 3].map((i) => {
    const bits = Math.max(0, Math.min(32, prefix - 32 * i));
    return bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  });
}

const key6 = (w: readonly number[]) => w.join(",");

function compile(plan: SteeringPlan): Compiled {
  const cached = compiledPlans.get(plan);
  if (cached) return cached;
  if (!Number.isInteger(plan.mask) || plan.mask < 0 || plan.mask > 0xffffffff)
    throw new RangeError(`Invalid steering mask "${plan.mask}": expected a 32-bit unsigned integer`);
  const prefix6 = plan.prefix6 ?? 128;
  if (!Number.isInteger(prefix6) || prefix6 < 0 || prefix6 > 128)
    throw new RangeError(`Invalid IPv6 steering prefix "${plan.prefix6}": expected 0 to 128`);
  const locals = new Set(addresses(plan.locals, "locals"));
  const vips = new Set(addresses(plan.vips, "vips").filter((a) => !locals.has(a)));
  const mask = plan.byAddress ? plan.mask >>> 0 : 0xffffffff;
  const l6 = new Map(addresses6(plan.locals, "locals").map((w) => [key6(w), w]));
  const v6 = new Map(addresses6(plan.vips, "vips").map((w) => [key6(w), w]));
  for (const k of l6.keys()) v6.delete(k);
  const byAddress6 = plan.byAddress6 ?? false;
  const mask6 = prefixMask6(byAddress6 ? prefix6 : 128);
  const vipNets = ipv4Nets(plan.vipPrefixes ?? []);
  let program = generate(
    { locals: [...locals], vips: [...vips], nets: vipNets, byAddress: plan.byAddress, mask },
    { locals: [...l6.values()], vips: [...v6.values()], byAddress: byAddress6, mask: mask6 },
  );
  let fallback = false;
  if (program.length / 8 > MAX_STEERING_INSNS) {
    program = encode([{ code: RET_K, jt: 0, jf: 0, k: 0 }]);
    fallback = true;
  }
  const c: Compiled = {
    locals,
    vips,
    vipNets,
    byAddress: plan.byAddress,
    mask,
    locals6: new Set(l6.keys()),
    vips6: new Set(v6.keys()),
    byAddress6,
    mask6,
    program,
    fallback,
  };
  compiledPlans.set(plan, c);
  return c;
}

// ---------------------------------------------------------------------------------------------
// A tiny assembler: instructions with symbolic jump targets, resolved after layout

type Target = string | undefined; // undefined: the next instruction

interface Insn {
  code: number;
  k: number;
  jt?: Target;
  jf?: Target;
  /** JA's target. */
  to?: string;
}

interface Resolved {
  code: number;
  jt: number;
  jf: number;
  k: number;
}

class Assembler {
  readonly #insns: Insn[] = [];
  readonly #labels = new Map<string, number>();

  op(code: number, k = 0): void {
    this.#insns.push({ code, k });
  }

  jump(code: number, k: number, jt: Target, jf: Target): void {
    this.#insns.push({ code, k, jt, jf });
  }

  ja(to: string): void {
    this.#insns.push({ code: JMP_JA, k: 0, to });
  }

  label(name: string): void {
    if (this.#labels.has(name)) throw new Error(`Steering assembler: label "${name}" defined twice`);
    this.#labels.set(name, this.#insns.length);
  }

  resolve(): Resolved[] {
    const where = (t: string, from: number): number => {
      const at = this.#labels.get(t);
      if (at === undefined) throw new Error(`Steering assembler: label "${t}" is not defined`);
      const d = at - from - 1;
      if (d < 0) throw new Error(`Steering assembler: backward jump to "${t}"`);
      return d;
    };
    return this.#insns.map((i, pc) => {
      if (i.to !== undefined) return { code: i.code, jt: 0, jf: 0, k: where(i.to, pc) };
      const jt = i.jt === undefined ? 0 : where(i.jt, pc);
      const jf = i.jf === undefined ? 0 : where(i.jf, pc);
      if (jt > 255 || jf > 255) throw new Error(`Steering assembler: conditional jump too far at ${pc}`);
      return { code: i.code, jt, jf, k: i.k >>> 0 };
    });
  }
}

const HOST_LE = new Uint16Array(new Uint8Array([1, 0]).buffer)[0] === 1;

function encode(insns: readonly Resolved[]): Uint8Array {
  const out = new Uint8Array(insns.length * 8);
  const v = new DataView(out.buffer);
  insns.forEach((i, n) => {
    v.setUint16(n * 8, i.code, HOST_LE);
    v.setUint8(n * 8 + 2, i.jt);
    v.setUint8(n * 8 + 3, i.jf);
    v.setUint32(n * 8 + 4, i.k >>> 0, HOST_LE);
  });
  return out;
}

/** Test A against each address; a match jumps to `hit`, no match falls through. */
function membership(asm: Assembler, list: readonly number[], hit: string, name: string): void {
  for (let b = 0; b * BLOCK < list.length; b++) {
    const block = list.slice(b * BLOCK, (b + 1) * BLOCK);
    const tramp = `${name}-hit-${b}`;
    const next = `${name}-next-${b}`;
    for (const a of block) asm.jump(JMP_JEQ_K, a, tramp, undefined);
    asm.ja(next);
    asm.label(tramp);
    asm.ja(hit);
    asm.label(next);
  }
}

/** Test M[slot] against each prefix ((M & mask) == net); a match jumps to `hit`, A is clobbered. */
function prefixMembership(
  asm: Assembler,
  nets: readonly { net: number; mask: number }[],
  slot: number,
  hit: string,
  name: string,
): void {
  const per = 60; // 3 instructions each: the trampoline stays within a conditional jump's 255
  for (let b = 0; b * per < nets.length; b++) {
    const tramp = `${name}-hit-${b}`;
    const next = `${name}-next-${b}`;
    for (const n of nets.slice(b * per, (b + 1) * per)) {
      asm.op(LD_MEM, slot);
      asm.op(ALU_AND_K, n.mask);
      asm.jump(JMP_JEQ_K, n.net, tramp, undefined);
    }
    asm.ja(next);
    asm.label(tramp);
    asm.ja(hit);
    asm.label(next);
  }
}

/** `A ^= A >>> s` (X is clobbered). */
function xorShift(asm: Assembler, s: number): void {
  asm.op(MISC_TAX);
  asm.op(ALU_RSH_K, s);
  asm.op(ALU_XOR_X);
}

interface Family4 {
  locals: readonly number[];
  vips: readonly number[];
  nets: readonly { net: number; mask: number }[];
  byAddress: boolean;
  mask: number;
}

interface Family6 {
  locals: readonly (readonly number[])[];
  vips: readonly (readonly number[])[];
  byAddress: boolean;
  mask: readonly number[];
}

function generate(v4: Family4, v6: Family6): Uint8Array {
  const { locals, vips, nets, byAddress, mask } = v4;
  const a = new Assembler();
  // IPv4 and IPv6; everything else to worker 0.
  a.op(LD_W_ABS, SKF_AD_PROTOCOL);
  a.jump(JMP_JEQ_K, ETH_P_IP, "ipv4", undefined);
  a.jump(JMP_JEQ_K, ETH_P_IPV6, "to-ipv6", undefined);
  a.op(RET_K, 0);
  a.label("to-ipv6");
  a.ja("ipv6");
  a.label("ipv4");
  // X = IHL * 4.
  a.op(LD_B_ABS, NET + 0);
  a.op(ALU_AND_K, 0x0f);
  a.op(ALU_LSH_K, 2);
  a.op(MISC_TAX);
  // Defaults: C = (daddr, 0), O = (saddr, 0).
  a.op(LD_W_ABS, NET + 16);
  a.op(ST, M_CA);
  a.op(LD_W_ABS, NET + 12);
  a.op(ST, M_OA);
  a.op(LD_IMM, 0);
  a.op(ST, M_CP);
  a.op(ST, M_OP);
  // Non-first fragments carry no L4 header.
  a.op(LD_H_ABS, NET + 6);
  a.jump(JMP_JSET_K, 0x1fff, "classify", undefined);
  a.op(LD_B_ABS, NET + 9);
  for (const p of PORT_PROTOCOLS) a.jump(JMP_JEQ_K, p, "ports", undefined);
  a.jump(JMP_JEQ_K, 1, undefined, "classify");
  // ICMP: errors steer by the quoted header, the rest by addresses alone.
  a.op(LD_B_IND, NET + 0);
  for (const t of ERROR_TYPES.slice(0, -1)) a.jump(JMP_JEQ_K, t, "icmp-error", undefined);
  a.jump(JMP_JEQ_K, ERROR_TYPES[ERROR_TYPES.length - 1]!, "icmp-error", "classify");

  a.label("ports");
  a.op(LD_H_IND, NET + 0);
  a.op(ST, M_OP);
  a.op(LD_H_IND, NET + 2);
  a.op(ST, M_CP);
  a.ja("classify");

  // The quoted header starts at l4 + 8: C = (quoted src, sport), O = (quoted dst, dport).
  a.label("icmp-error");
  a.op(LD_W_IND, NET + 8 + 12);
  a.op(ST, M_CA);
  a.op(LD_W_IND, NET + 8 + 16);
  a.op(ST, M_OA);
  a.op(LD_H_IND, NET + 8 + 6);
  a.jump(JMP_JSET_K, 0x1fff, "classify", undefined);
  a.op(LD_B_IND, NET + 8 + 9);
  for (const p of PORT_PROTOCOLS.slice(0, -1)) a.jump(JMP_JEQ_K, p, "quoted-ports", undefined);
  a.jump(JMP_JEQ_K, PORT_PROTOCOLS[PORT_PROTOCOLS.length - 1]!, "quoted-ports", "classify");
  a.label("quoted-ports");
  a.op(LD_B_IND, NET + 8);
  a.op(ALU_AND_K, 0x0f);
  a.op(ALU_LSH_K, 2);
  a.op(ALU_ADD_X);
  a.op(MISC_TAX); // X = outer IHL + quoted IHL
  a.op(LD_H_IND, NET + 8 + 0);
  a.op(ST, M_CP);
  a.op(LD_H_IND, NET + 8 + 2);
  a.op(ST, M_OP);

  // C is a local address → its port; a VIP → the client is O; otherwise the client is C.
  a.label("classify");
  a.op(LD_MEM, M_CA);
  membership(a, locals, "local", "locals");
  membership(a, vips, "vip", "vips");
  if (nets.length > 0) {
    prefixMembership(a, nets, M_CA, "vip", "vipnets");
    a.op(LD_MEM, M_CA);
  }
  a.op(LDX_MEM, M_CP);
  a.ja("hash");
  a.label("vip");
  a.op(LD_MEM, M_OA);
  a.op(LDX_MEM, M_OP);
  a.ja("hash");
  a.label("local");
  a.op(LD_MEM, M_CP);
  a.op(RET_A);

  // A = client address, X = client port.
  a.label("hash");
  if (byAddress) a.op(ALU_AND_K, mask);
  else a.op(ALU_XOR_X);
  xorShift(a, 16);
  a.op(ALU_MUL_K, HASH_M1);
  xorShift(a, 13);
  a.op(ALU_MUL_K, HASH_M2);
  xorShift(a, 16);
  a.op(RET_A);

  generate6(a, v6);
  return encode(a.resolve());
}

/** Store the four words at NET + at into M[slot..slot+3]. */
function store6(a: Assembler, at: number, slot: number): void {
  for (let i = 0; i < 4; i++) {
    a.op(LD_W_ABS, NET + at + 4 * i);
    a.op(ST, slot + i);
  }
}

/**
 * Test the classified IPv6 address (M[C6..C6+3], A holding its last word) against each address:
 * a match jumps to `hit`; no match falls through with A still the last word. The last word is
 * compared first, so a miss costs one instruction per address.
 */
function membership6(a: Assembler, list: readonly (readonly number[])[], hit: string, name: string): void {
  list.forEach((w, i) => {
    const restore = `${name}-restore-${i}`;
    const next = `${name}-next-${i}`;
    a.jump(JMP_JEQ_K, w[3]!, undefined, next);
    for (let k = 0; k < 3; k++) {
      a.op(LD_MEM, M_C6 + k);
      a.jump(JMP_JEQ_K, w[k]!, undefined, restore);
    }
    a.ja(hit);
    a.label(restore);
    a.op(LD_MEM, M_C6 + 3);
    a.label(next);
  });
}

/** A = fold of the four words at M[slot..slot+3], each masked first unless the mask is all ones. */
function fold6(a: Assembler, slot: number, mask: readonly number[]): void {
  for (let i = 0; i < 4; i++) {
    a.op(LD_MEM, slot + i);
    if (mask[i] !== 0xffffffff) a.op(ALU_AND_K, mask[i]!);
    if (i === 0) a.op(ST, M_CA);
    else {
      a.op(LDX_MEM, M_CA);
      a.op(ALU_XOR_X);
      a.op(ST, M_CA);
    }
  }
}

function generate6(a: Assembler, v6: Family6): void {
  a.label("ipv6");
  // Defaults: C = daddr, O = saddr, ports 0.
  store6(a, 24, M_C6);
  store6(a, 8, M_O6);
  a.op(LD_IMM, 0);
  a.op(ST, M_CP);
  a.op(ST, M_OP);
  // Only a transport header right after the fixed header gives ports; an extension header
  // (fragment header included) leaves the addresses alone to decide.
  a.op(LD_B_ABS, NET + 6);
  for (const p of PORT_PROTOCOLS) a.jump(JMP_JEQ_K, p, "ports6", undefined);
  a.jump(JMP_JEQ_K, ICMPV6, undefined, "classify6");
  a.op(LD_B_ABS, NET + 40);
  for (const t of ICMPV6_ERROR_TYPES.slice(0, -1)) a.jump(JMP_JEQ_K, t, "icmp6-error", undefined);
  a.jump(JMP_JEQ_K, ICMPV6_ERROR_TYPES[ICMPV6_ERROR_TYPES.length - 1]!, "icmp6-error", "classify6");

  a.label("ports6");
  a.op(LD_H_ABS, NET + 40);
  a.op(ST, M_OP);
  a.op(LD_H_ABS, NET + 42);
  a.op(ST, M_CP);
  a.ja("classify6");

  // The quoted header at l3 + 48: C = quoted src, O = quoted dst, their ports at l3 + 88.
  a.label("icmp6-error");
  store6(a, 48 + 8, M_C6);
  store6(a, 48 + 24, M_O6);
  a.op(LD_B_ABS, NET + 48 + 6);
  for (const p of PORT_PROTOCOLS.slice(0, -1)) a.jump(JMP_JEQ_K, p, "quoted-ports6", undefined);
  a.jump(JMP_JEQ_K, PORT_PROTOCOLS[PORT_PROTOCOLS.length - 1]!, "quoted-ports6", "classify6");
  a.label("quoted-ports6");
  a.op(LD_H_ABS, NET + 88);
  a.op(ST, M_CP);
  a.op(LD_H_ABS, NET + 90);
  a.op(ST, M_OP);

  // C a local address → its port; a VIP → the client is O; otherwise the client is C.
  a.label("classify6");
  a.op(LD_MEM, M_C6 + 3);
  membership6(a, v6.locals, "local6", "locals6");
  membership6(a, v6.vips, "vip6", "vips6");
  fold6(a, M_C6, v6.mask);
  a.op(LDX_MEM, M_CP);
  a.ja("hash6");
  a.label("vip6");
  fold6(a, M_O6, v6.mask);
  a.op(LDX_MEM, M_OP);
  a.ja("hash6");
  a.label("local6");
  a.op(LD_MEM, M_CP);
  a.op(RET_A);

  // A = folded client address, X = client port.
  a.label("hash6");
  if (!v6.byAddress) a.op(ALU_XOR_X);
  xorShift(a, 16);
  a.op(ALU_MUL_K, HASH_M1);
  xorShift(a, 13);
  a.op(ALU_MUL_K, HASH_M2);
  xorShift(a, 16);
  a.op(RET_A);
}

// ---------------------------------------------------------------------------------------------
// Public API

/** The classic BPF program as the kernel's struct sock_filter array: 8 bytes each (u16 code, u8 jt, u8 jf, u32 k), little-endian host order. */
export function steeringProgram(plan: SteeringPlan): Uint8Array {
  return compile(plan).program.slice();
}

/** Whether the plan was too large for one program, so every frame goes to worker 0. */
export function steeringFallback(plan: SteeringPlan): boolean {
  return compile(plan).fallback;
}

const hasPorts = (proto: number) => proto === 6 || proto === 17 || proto === 132;
const isIcmpError = (type: number) => type === 3 || type === 4 || type === 5 || type === 11 || type === 12;
const be16 = (b: Uint8Array, p: number) => (b[p]! << 8) | b[p + 1]!;
const be32 = (b: Uint8Array, p: number) => ((b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!) >>> 0;

/**
 * The same decision in TypeScript on an Ethernet frame at buf[off..off+len): the 32-bit value the program returns (worker = value % N).
 * Each bounds check below stands for the program's loads on that path: a load past the end of
 * the frame makes the program return 0, so a frame too short for any of them returns 0 here.
 */
export function steerValue(plan: SteeringPlan, buf: Uint8Array, off: number, len: number): number {
  const c = compile(plan);
  if (c.fallback || len < 14) return 0;
  const type = be16(buf, off + 12);
  if (type === ETH_P_IPV6) return steerValue6(c, buf, off + 14, off + len);
  if (type !== ETH_P_IP) return 0;
  const end = off + len;
  const n = off + 14;
  if (n + 20 > end) return 0; // bytes 0, 6-7, 9, 12-19 of the IP header
  const l4 = n + ((buf[n]! & 0x0f) << 2);
  let ca = be32(buf, n + 16);
  let oa = be32(buf, n + 12);
  let cport = 0;
  let op = 0;
  if ((be16(buf, n + 6) & 0x1fff) === 0) {
    const proto = buf[n + 9]!;
    if (hasPorts(proto)) {
      if (l4 + 4 > end) return 0;
      op = be16(buf, l4);
      cport = be16(buf, l4 + 2);
    } else if (proto === 1) {
      if (l4 + 1 > end) return 0;
      if (isIcmpError(buf[l4]!)) {
        const q = l4 + 8; // the quoted IP header
        if (q + 20 > end) return 0; // quoted bytes 6-7, 9, 12-19
        ca = be32(buf, q + 12);
        oa = be32(buf, q + 16);
        if ((be16(buf, q + 6) & 0x1fff) === 0 && hasPorts(buf[q + 9]!)) {
          const ql4 = q + ((buf[q]! & 0x0f) << 2);
          if (ql4 + 4 > end) return 0;
          cport = be16(buf, ql4);
          op = be16(buf, ql4 + 2);
        }
      }
    }
  }
  return decide(c, ca, cport, oa, op);
}

/** The IPv6 part of steerValue, from the network header at n to end. */
function steerValue6(c: Compiled, buf: Uint8Array, n: number, end: number): number {
  if (n + 40 > end) return 0; // the fixed header: next header and both addresses
  let ca = n + 24;
  let oa = n + 8;
  let cport = 0;
  let op = 0;
  const next = buf[n + 6]!;
  if (hasPorts(next)) {
    if (n + 44 > end) return 0;
    op = be16(buf, n + 40);
    cport = be16(buf, n + 42);
  } else if (next === ICMPV6) {
    if (n + 41 > end) return 0;
    const type = buf[n + 40]!;
    if (type >= 1 && type <= 4) {
      if (n + 88 > end) return 0; // quoted next header and addresses
      ca = n + 48 + 8;
      oa = n + 48 + 24;
      if (hasPorts(buf[n + 48 + 6]!)) {
        if (n + 92 > end) return 0;
        cport = be16(buf, n + 88);
        op = be16(buf, n + 90);
      }
    }
  }
  const w = (p: number) => [be32(buf, p), be32(buf, p + 4), be32(buf, p + 8), be32(buf, p + 12)];
  return decide6(c, w(ca), cport, w(oa), op);
}

/** Rules 1-4 for IPv6 addresses given as four words each. */
function decide6(c: Compiled, ca: readonly number[], cport: number, oa: readonly number[], op: number): number {
  const k = key6(ca);
  if (c.locals6.has(k)) return cport;
  const vip = c.vips6.has(k);
  const addr = vip ? oa : ca;
  let fold = 0;
  for (let i = 0; i < 4; i++) fold ^= addr[i]! & c.mask6[i]!;
  if (c.byAddress6) return steeringHash(fold >>> 0, 0);
  return steeringHash(fold >>> 0, vip ? op : cport);
}

/** Rules 1-4 once the classified side C (dst, or the quoted src) and the other side O are known. */
function decide(c: Compiled, ca: number, cport: number, oa: number, op: number): number {
  if (c.locals.has(ca)) return cport;
  const vip = c.vips.has(ca) || c.vipNets.some((n) => (ca & n.mask) >>> 0 === n.net);
  const addr = vip ? oa : ca;
  if (c.byAddress) return steeringHash((addr & c.mask) >>> 0, 0);
  return steeringHash(addr, vip ? op : cport);
}

/**
 * Where a frame's flow belongs, as opposed to where the program sends the frame: the same value
 * for everything the program reads ports from, and for an IPv6 packet with extension headers
 * (hop-by-hop, routing, destination options; not a fragment) the value its transport ports would
 * give without them. A worker that got such a packet by its addresses hands it to this worker
 * (ipv6-defrag.ts), as it does with a reassembled datagram.
 */
export function steerFlow(plan: SteeringPlan, buf: Uint8Array, off: number, len: number): number {
  const c = compile(plan);
  if (c.fallback || len < 14 + 40 || be16(buf, off + 12) !== ETH_P_IPV6) return steerValue(plan, buf, off, len);
  const n = off + 14;
  const end = off + len;
  let next = buf[n + 6]!;
  let at = n + 40;
  for (let hops = 0; hops < 8 && (next === 0 || next === 43 || next === 60); hops++) {
    if (at + 8 > end) return steerValue(plan, buf, off, len);
    next = buf[at]!;
    at += (buf[at + 1]! + 1) * 8;
  }
  if (at === n + 40 || !hasPorts(next) || at + 4 > end) return steerValue(plan, buf, off, len);
  const w = (p: number) => [be32(buf, p), be32(buf, p + 4), be32(buf, p + 8), be32(buf, p + 12)];
  return decide6(c, w(n + 24), be16(buf, at + 2), w(n + 8), be16(buf, at));
}

/**
 * The value for a TCP/UDP/SCTP packet src:sport → dst:dport without building a frame: for placing
 * a connection that did not arrive as a frame (a synced entry, a template) on the worker the
 * program will send its packets to (IPv6 as a packet without extension headers).
 */
export function steerTuple(plan: SteeringPlan, src: string, sport: number, dst: string, dport: number): number {
  const c = compile(plan);
  if (c.fallback) return 0;
  if (src.includes(":") || dst.includes(":")) {
    const s6 = words6(src);
    const d6 = words6(dst);
    if (s6 === undefined) throw new RangeError(`Invalid source address "${src}" to steer`);
    if (d6 === undefined) throw new RangeError(`Invalid destination address "${dst}" to steer`);
    return decide6(c, d6, dport & 0xffff, s6, sport & 0xffff);
  }
  const s = parseIpv4(src);
  const d = parseIpv4(dst);
  if (s === undefined) throw new RangeError(`Invalid source address "${src}" to steer`);
  if (d === undefined) throw new RangeError(`Invalid destination address "${dst}" to steer`);
  return decide(c, d >>> 0, dport & 0xffff, s >>> 0, sport & 0xffff);
}
