// Which tvsd worker gets a new connection or datagram (--workers N on the socket plane).
//
// Every worker has its own SO_REUSEPORT socket per VIP. By default the kernel picks one of the
// group's sockets by a hash of the flow's addresses and ports, which spreads connections evenly
// but sends one client's successive connections (new source ports) to different workers. Each
// worker schedules on its own, so persistence (-p) would hold per worker only.
//
// For a persistent service the plane attaches a classic BPF program to the group
// (SO_ATTACH_REUSEPORT_CBPF) that picks the socket from the client's source address alone:
//
//   A = the first byte of the IP header; A >>= 4        (the IP version)
//   IPv4: A = source address (network header + 12)
//   IPv6: A = last 32 bits of the source address (network header + 20)
//   A *= 0x9E3779B1; A >>= 16; A %= N; return A          (a multiplicative hash, then the index)
//
// so every connection and datagram of one client address reaches the same worker, whose
// persistence template then holds for all of them, as with one director. The program reads the
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
const JMP_JEQ_K = 0x15;
const JMP_JA = 0x05;
const RET_A = 0x16;
/** SO_DETACH_REUSEPORT_BPF (linux/socket.h), SOL_SOCKET. */
const SO_DETACH_REUSEPORT_BPF = 68;
const SOL_SOCKET = 1;

/** The program above for a group of `workers` sockets, as struct sock_filter bytes. */
export function sourceSteeringProgram(workers: number): Uint8Array {
  if (!Number.isInteger(workers) || workers < 1 || workers > 0xffff)
    throw new RangeError(`Worker count "${workers}" out of range 1..65535`);
  const insns: [code: number, jt: number, jf: number, k: number][] = [
    [LD_B_ABS, 0, 0, SKF_NET_OFF + 0],
    [ALU_RSH_K, 0, 0, 4],
    [JMP_JEQ_K, 0, 2, 4],
    [LD_W_ABS, 0, 0, SKF_NET_OFF + 12],
    [JMP_JA, 0, 0, 1],
    [LD_W_ABS, 0, 0, SKF_NET_OFF + 20],
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
export function workerForSource(addr32: number, workers: number): number {
  return ((Math.imul(addr32 >>> 0, 0x9e3779b1) >>> 0) >>> 16) % workers;
}

/**
 * Steer the SO_REUSEPORT group of `fd` by client address (persistent services) or give it back
 * to the kernel's flow hash. Returns false when the addon cannot (not built, or an old build);
 * throws the system's error otherwise.
 */
export function steerBySource(fd: number, workers: number, on: boolean): boolean {
  const native = loadNative();
  if (on) {
    if (typeof native.setReuseportProgram !== "function") return false;
    native.setReuseportProgram(fd, sourceSteeringProgram(workers));
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
