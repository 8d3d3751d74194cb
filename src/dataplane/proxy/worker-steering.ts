// Which tvsd worker gets a new connection or datagram (--workers N on the socket plane).
//
// Every worker has its own SO_REUSEPORT socket per VIP. By default the kernel picks one of the
// group's sockets by a hash of the flow's addresses and ports, which spreads connections evenly
// but sends one client's successive connections (new source ports) to different workers. Each
// worker schedules on its own, so persistence (-p) would hold per worker only.
//
// For a persistent service the plane attaches a classic BPF program to the group
// (SO_ATTACH_REUSEPORT_CBPF) that picks the socket from the client's source network alone, the
// network the service's persistence netmask (-M, a prefix length) keys its templates by:
//
//   A = the first byte of the IP header; A >>= 4        (the IP version)
//   IPv4: A = source address (network header + 12) & netmask
//   IPv6: A = the source address's 32-bit words that the prefix reaches (network header + 8,
//         + 12, ...), the last one masked, folded together with XOR (X holds the fold so far)
//   A *= 0x9E3779B1; A >>= 16; A %= N; return A          (a multiplicative hash, then the index)
//
// so every connection and datagram of one client network reaches the same worker, whose
// persistence template then holds for all of them, as with one director. (Hashing the whole
// address would send two clients of one -M 255.255.255.0 network to different workers, each
// scheduling its own template: the network would be split over real servers.) The program reads the
// network header through SKF_NET_OFF, because the kernel hands a reuseport program the packet
// with its data pointer past the transport header. Index i is the i-th socket that joined the
// group; an index past the group's size (a worker not listening yet) falls back to the hash.
// Non-persistent services keep the kernel's hash: the spread over workers stays even whatever the
// client population (one busy client, or many clients behind one NAT address, would otherwise
// load one worker). rr/wrr sequences interleave per worker either way (docs/compat.md).

import { loadNative } from "../../platform/native-addon.ts";

const SKF_NET_OFF = 0xfff00000; // -0x100000 as an unsigned 32-bit k
const LD_B_ABS = 0x30;
const LD_W_ABS = 0x20;
const ALU_RSH_K = 0x74;
const ALU_MUL_K = 0x24;
const ALU_MOD_K = 0x94;
const ALU_AND_K = 0x54;
const ALU_XOR_X = 0xac;
const LD_IMM = 0x00;
const MISC_TAX = 0x07;
const JMP_JEQ_K = 0x15;
const JMP_JA = 0x05;
const RET_A = 0x16;
/** SO_DETACH_REUSEPORT_BPF (linux/socket.h), SOL_SOCKET. */
const SO_DETACH_REUSEPORT_BPF = 68;
const SOL_SOCKET = 1;

/** The 32-bit mask of word `k` (0-based) of an address under a prefix of `prefix` bits. */
function wordMask(prefix: number, k: number): number {
  const bits = Math.max(0, Math.min(32, prefix - 32 * k));
  return bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
}

/**
 * The program above for a group of `workers` sockets, as struct sock_filter bytes. `prefix` is
 * the service's persistence netmask as a prefix length (0..32 for IPv4, 0..128 for IPv6; an
 * IPv4 service's prefix applies to IPv4 sources, an IPv6 service's to IPv6 sources, and the
 * other family, which a V6ONLY or IPv4 socket never receives, is hashed whole).
 */
export function sourceSteeringProgram(workers: number, prefix4 = 32, prefix6 = 128): Uint8Array {
  if (!Number.isInteger(workers) || workers < 1 || workers > 0xffff)
    throw new RangeError(`Worker count "${workers}" out of range 1..65535`);
  if (!(Number.isInteger(prefix4) && prefix4 >= 0 && prefix4 <= 32))
    throw new RangeError(`IPv4 prefix length "${prefix4}" out of range 0..32`);
  if (!(Number.isInteger(prefix6) && prefix6 >= 0 && prefix6 <= 128))
    throw new RangeError(`IPv6 prefix length "${prefix6}" out of range 0..128`);
  type Insn = [code: number, jt: number, jf: number, k: number];
  const v6: Insn[] = [];
  const words6 = Math.ceil(prefix6 / 32);
  if (words6 === 0) v6.push([LD_IMM, 0, 0, 0]);
  for (let k = 0; k < words6; k++) {
    if (k > 0) v6.push([MISC_TAX, 0, 0, 0]);
    v6.push([LD_W_ABS, 0, 0, SKF_NET_OFF + 8 + 4 * k]);
    const m = wordMask(prefix6, k);
    if (m !== 0xffffffff) v6.push([ALU_AND_K, 0, 0, m]);
    if (k > 0) v6.push([ALU_XOR_X, 0, 0, 0]);
  }
  const v4: Insn[] = [[LD_W_ABS, 0, 0, SKF_NET_OFF + 12]];
  if (prefix4 < 32) v4.push([ALU_AND_K, 0, 0, wordMask(prefix4, 0)]);
  const insns: Insn[] = [
    [LD_B_ABS, 0, 0, SKF_NET_OFF + 0],
    [ALU_RSH_K, 0, 0, 4],
    [JMP_JEQ_K, 0, v4.length + 1, 4],
    ...v4,
    [JMP_JA, 0, 0, v6.length],
    ...v6,
    [ALU_MUL_K, 0, 0, 0x9e3779b1],
    [ALU_RSH_K, 0, 0, 16],
    [ALU_MOD_K, 0, 0, workers],
    [RET_A, 0, 0, 0],
  ];
  const out = new Uint8Array(insns.length * 8);
  const view = new DataView(out.buffer);
  const le = true; // struct sock_filter is in host order; Linux on x86-64 and arm64 is little-endian
  insns.forEach(([code, jt, jf, k], i) => {
    view.setUint16(i * 8, code, le);
    view.setUint8(i * 8 + 2, jt);
    view.setUint8(i * 8 + 3, jf);
    view.setUint32(i * 8 + 4, k >>> 0, le);
  });
  return out;
}

/** The worker index the program picks for a source address (the same arithmetic, for tests and docs). */
export function workerForSource(addr32: number, workers: number, prefix = 32): number {
  return ((Math.imul((addr32 & wordMask(prefix, 0)) >>> 0, 0x9e3779b1) >>> 0) >>> 16) % workers;
}

/** The same for an IPv6 source given as its four 32-bit words, under a prefix of `prefix` bits. */
export function workerForSource6(words: readonly number[], workers: number, prefix = 128): number {
  let a = 0;
  for (let k = 0; k < Math.ceil(prefix / 32); k++) a = (a ^ ((words[k] ?? 0) & wordMask(prefix, k))) >>> 0;
  return workerForSource(a, workers);
}

/**
 * Steer the SO_REUSEPORT group of `fd` by client network (persistent services: `prefix` is the
 * persistence netmask as a prefix length of the service's family) or give it back to the
 * kernel's flow hash. Returns false when the addon cannot (not built, or an old build); throws
 * the system's error otherwise.
 */
export function steerBySource(fd: number, workers: number, on: boolean, family: 4 | 6 = 4, prefix?: number): boolean {
  const native = loadNative();
  if (on) {
    if (typeof native.setReuseportProgram !== "function") return false;
    const program =
      family === 4 ? sourceSteeringProgram(workers, prefix ?? 32) : sourceSteeringProgram(workers, 32, prefix ?? 128);
    native.setReuseportProgram(fd, program);
    return true;
  }
  try {
    native.setsockopt(fd, SOL_SOCKET, SO_DETACH_REUSEPORT_BPF, 0);
  } catch (err) {
    // ENOENT: nothing attached. Kernels before 5.8 cannot detach (ENOPROTOOPT): the program stays.
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  return true;
}
