// A small classic-BPF (struct sock_filter) checker and interpreter, the test oracle for the
// fanout steering program (steering.ts): it runs a program over an Ethernet frame the way the
// kernel runs a PACKET_FANOUT_CBPF program on a received skb, so unit tests can compare the
// program's answer with the TypeScript decision without root. It deliberately shares no code or
// opcode table with the program generator, so a wrong opcode there shows up as a disagreement
// here (and the lab test then proves the kernel agrees with both).
//
// Model of the skb: the frame is buf[off..off+len); the MAC header is at off, the network header
// at off+14, skb->data at the network header (the receive path has pulled the Ethernet header by
// the time fanout runs; "mac" moves it back for socket-filter style programs), skb->protocol is
// the ethertype unless the caller says otherwise. Loads: k >= 0 is relative to skb->data;
// SKF_NET_OFF + n and SKF_LL_OFF + n to the network and MAC headers; SKF_AD_OFF + SKF_AD_PROTOCOL
// / SKF_AD_LEN are the ancillary values. A load outside the frame ends the program with 0, like
// the kernel. Supported: LD/LDX W/H/B ABS/IND/MSH/IMM/MEM/LEN, ST/STX, every ALU op with K or X,
// JA/JEQ/JGT/JGE/JSET with K or X, RET K/A, TAX/TXA.

/** One instruction, as in struct sock_filter. */
export interface CbpfInsn {
  code: number;
  jt: number;
  jf: number;
  k: number;
}

export const BPF_MAXINSNS = 4096;
export const BPF_MEMWORDS = 16;
export const SKF_AD_OFF = -0x1000;
export const SKF_AD_PROTOCOL = 0;
export const SKF_AD_LEN = 1;
export const SKF_NET_OFF = -0x100000;
export const SKF_LL_OFF = -0x200000;

// Field masks and values of the opcode (linux/bpf_common.h), spelled out here on purpose.
const CLASS = 0x07;
const SIZE = 0x18;
const MODE = 0xe0;
const OPER = 0xf0;
const SRC_X = 0x08;
const C_LD = 0x00;
const C_LDX = 0x01;
const C_ST = 0x02;
const C_STX = 0x03;
const C_ALU = 0x04;
const C_JMP = 0x05;
const C_RET = 0x06;
const C_MISC = 0x07;
const S_W = 0x00;
const S_H = 0x08;
const S_B = 0x10;
const M_IMM = 0x00;
const M_ABS = 0x20;
const M_IND = 0x40;
const M_MEM = 0x60;
const M_LEN = 0x80;
const M_MSH = 0xa0;
const RVAL = 0x18;
const R_K = 0x00;
const R_A = 0x10;

const HOST_LE = new Uint16Array(new Uint8Array([1, 0]).buffer)[0] === 1;

/** Decode a program from its kernel byte layout (8 bytes each: u16 code, u8 jt, u8 jf, u32 k, host order). */
export function decodeCbpf(bytes: Uint8Array): CbpfInsn[] {
  if (bytes.length % 8 !== 0)
    throw new RangeError(`A classic BPF program is a multiple of 8 bytes, not ${bytes.length} bytes`);
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: CbpfInsn[] = [];
  for (let i = 0; i < bytes.length; i += 8)
    out.push({
      code: v.getUint16(i, HOST_LE),
      jt: v.getUint8(i + 2),
      jf: v.getUint8(i + 3),
      k: v.getUint32(i + 4, HOST_LE),
    });
  return out;
}

function describe(i: CbpfInsn, pc: number): string {
  return `instruction ${pc} (code 0x${i.code.toString(16)}, k ${i.k})`;
}

/**
 * Reject what the kernel's classic checker (bpf_check_classic) rejects among the parts this
 * interpreter models: empty or over-long programs, unknown opcodes, jumps out of the program,
 * constant division by zero, constant shifts of 32 or more, scratch slots out of range, a scratch
 * slot read on some path before it was written, and a last instruction that is not RET.
 */
export function checkCbpf(prog: readonly CbpfInsn[]): void {
  const n = prog.length;
  if (n === 0 || n > BPF_MAXINSNS)
    throw new RangeError(`A classic BPF program has 1 to ${BPF_MAXINSNS} instructions, not ${n}`);
  for (let pc = 0; pc < n; pc++) {
    const i = prog[pc]!;
    const cls = i.code & CLASS;
    const bad = () => new RangeError(`Unsupported or invalid ${describe(i, pc)}`);
    switch (cls) {
      case C_LD: {
        const mode = i.code & MODE;
        const size = i.code & SIZE;
        if (i.code & ~(MODE | SIZE)) throw bad();
        if (mode === M_ABS || mode === M_IND) {
          if (size !== S_W && size !== S_H && size !== S_B) throw bad();
          const k = i.k | 0;
          if (mode === M_ABS && k < 0 && k >= SKF_AD_OFF) {
            const ad = k - SKF_AD_OFF;
            if (size !== S_W || (ad !== SKF_AD_PROTOCOL && ad !== SKF_AD_LEN)) throw bad();
          }
        } else if (mode === M_MEM) {
          if (size !== S_W || i.k >= BPF_MEMWORDS) throw bad();
        } else if (mode !== M_IMM && mode !== M_LEN) throw bad();
        else if (size !== S_W) throw bad();
        break;
      }
      case C_LDX: {
        const ok = [C_LDX | S_W | M_IMM, C_LDX | S_W | M_MEM, C_LDX | S_W | M_LEN, C_LDX | S_B | M_MSH];
        if (!ok.includes(i.code) || ((i.code & MODE) === M_MEM && i.k >= BPF_MEMWORDS)) throw bad();
        break;
      }
      case C_ST:
      case C_STX:
        if (i.code !== cls || i.k >= BPF_MEMWORDS) throw bad();
        break;
      case C_ALU: {
        const op = i.code & OPER;
        if (i.code & ~(OPER | SRC_X | CLASS) || op > 0xa0) throw bad();
        if (!(i.code & SRC_X)) {
          if ((op === 0x30 || op === 0x90) && i.k === 0) throw new RangeError(`Division by zero in ${describe(i, pc)}`);
          if ((op === 0x60 || op === 0x70) && i.k >= 32) throw bad();
        }
        break;
      }
      case C_JMP: {
        const op = i.code & OPER;
        if (i.code & ~(OPER | SRC_X | CLASS)) throw bad();
        if (op === 0x00) {
          if (i.code !== C_JMP || i.k >= n - pc - 1)
            throw new RangeError(`Jump out of the program at ${describe(i, pc)}`);
        } else if (op === 0x10 || op === 0x20 || op === 0x30 || op === 0x40) {
          if (pc + 1 + i.jt >= n || pc + 1 + i.jf >= n)
            throw new RangeError(`Jump out of the program at ${describe(i, pc)}`);
        } else throw bad();
        break;
      }
      case C_RET: {
        const rv = i.code & RVAL;
        if (i.code & ~(RVAL | CLASS) || (rv !== R_K && rv !== R_A)) throw bad();
        break;
      }
      case C_MISC:
        if (i.code !== (C_MISC | 0x00) && i.code !== (C_MISC | 0x80)) throw bad();
        break;
    }
  }
  const last = prog[n - 1]!;
  if ((last.code & CLASS) !== C_RET)
    throw new RangeError(`The last instruction must be RET, not ${describe(last, n - 1)}`);
  checkScratch(prog);
}

/** Every scratch read must follow a write on every path to it (the kernel's check_load_and_stores). */
function checkScratch(prog: readonly CbpfInsn[]): void {
  const valid = new Array<number>(prog.length).fill(0xffff);
  valid[0] = 0;
  let cur = 0;
  for (let pc = 0; pc < prog.length; pc++) {
    cur &= valid[pc]!;
    const i = prog[pc]!;
    const cls = i.code & CLASS;
    if (cls === C_ST || cls === C_STX) cur |= 1 << i.k;
    else if ((cls === C_LD || cls === C_LDX) && (i.code & MODE) === M_MEM) {
      if (!(cur & (1 << i.k)))
        throw new RangeError(`Scratch slot M[${i.k}] is read before it is written at instruction ${pc}`);
    } else if (cls === C_JMP) {
      if ((i.code & OPER) === 0x00) valid[pc + 1 + i.k]! &= cur;
      else {
        valid[pc + 1 + i.jt]! &= cur;
        valid[pc + 1 + i.jf]! &= cur;
      }
      cur = 0xffff;
    } else if (cls === C_RET) cur = 0xffff;
  }
}

/** The skb the program runs on. */
export interface CbpfPacket {
  buf: Uint8Array;
  /** Start of the Ethernet frame (the MAC header). */
  off: number;
  /** Frame length in bytes. */
  len: number;
  /** skb->protocol in host order; default the frame's ethertype. */
  protocol?: number;
  /** Where skb->data (offset 0 of plain loads) points; default the network header. */
  dataAt?: "network" | "mac";
}

class OutOfFrame {}
const OUT = new OutOfFrame();

/** Run a (checked) program; returns the 32-bit value of its RET. */
export function runCbpf(program: Uint8Array | readonly CbpfInsn[], pkt: CbpfPacket): number {
  const prog = program instanceof Uint8Array ? decodeCbpf(program) : program;
  checkCbpf(prog);
  const { buf, off, len } = pkt;
  const end = off + len;
  const mac = off;
  const net = off + 14;
  const data = pkt.dataAt === "mac" ? mac : net;
  const protocol = pkt.protocol ?? (len >= 14 ? (buf[off + 12]! << 8) | buf[off + 13]! : 0);
  const skbLen = end - data;

  const at = (offset: number, size: number): number => {
    let p: number;
    if (offset >= 0) p = data + offset;
    else if (offset >= SKF_NET_OFF) p = net + (offset - SKF_NET_OFF);
    else if (offset >= SKF_LL_OFF) p = mac + (offset - SKF_LL_OFF);
    else throw OUT;
    if (p < off || p + size > end) throw OUT;
    return p;
  };
  const load = (offset: number, size: number): number => {
    const p = at(offset, size);
    if (size === 1) return buf[p]!;
    if (size === 2) return (buf[p]! << 8) | buf[p + 1]!;
    return ((buf[p]! << 24) | (buf[p + 1]! << 16) | (buf[p + 2]! << 8) | buf[p + 3]!) >>> 0;
  };
  const sizeOf = (code: number) => ((code & SIZE) === S_W ? 4 : (code & SIZE) === S_H ? 2 : 1);

  let A = 0;
  let X = 0;
  const M = new Uint32Array(BPF_MEMWORDS);
  try {
    for (let pc = 0; pc < prog.length; pc++) {
      const i = prog[pc]!;
      const cls = i.code & CLASS;
      switch (cls) {
        case C_LD: {
          const mode = i.code & MODE;
          if (mode === M_IMM) A = i.k >>> 0;
          else if (mode === M_LEN) A = skbLen;
          else if (mode === M_MEM) A = M[i.k]!;
          else if (mode === M_ABS) {
            const k = i.k | 0;
            if (k < 0 && k >= SKF_AD_OFF) A = k - SKF_AD_OFF === SKF_AD_PROTOCOL ? protocol : skbLen;
            else A = load(k, sizeOf(i.code));
          } else A = load((X + (i.k | 0)) | 0, sizeOf(i.code));
          break;
        }
        case C_LDX: {
          const mode = i.code & MODE;
          if (mode === M_MSH) X = (load(i.k | 0, 1) & 0xf) << 2;
          else if (mode === M_IMM) X = i.k >>> 0;
          else if (mode === M_LEN) X = skbLen;
          else X = M[i.k]!;
          break;
        }
        case C_ST:
          M[i.k] = A;
          break;
        case C_STX:
          M[i.k] = X;
          break;
        case C_ALU: {
          const v = i.code & SRC_X ? X : i.k >>> 0;
          switch (i.code & OPER) {
            case 0x00:
              A = (A + v) >>> 0;
              break;
            case 0x10:
              A = (A - v) >>> 0;
              break;
            case 0x20:
              A = Math.imul(A, v) >>> 0;
              break;
            case 0x30:
              if (v === 0) return 0;
              A = Math.floor(A / v) >>> 0;
              break;
            case 0x40:
              A = (A | v) >>> 0;
              break;
            case 0x50:
              A = (A & v) >>> 0;
              break;
            case 0x60:
              A = (A << (v & 31)) >>> 0;
              break;
            case 0x70:
              A = A >>> (v & 31);
              break;
            case 0x80:
              A = -A >>> 0;
              break;
            case 0x90:
              if (v === 0) return 0;
              A = (A % v) >>> 0;
              break;
            case 0xa0:
              A = (A ^ v) >>> 0;
              break;
          }
          break;
        }
        case C_JMP: {
          const op = i.code & OPER;
          if (op === 0x00) {
            pc += i.k;
            break;
          }
          const v = i.code & SRC_X ? X : i.k >>> 0;
          const taken = op === 0x10 ? A === v : op === 0x20 ? A > v : op === 0x30 ? A >= v : (A & v) !== 0;
          pc += taken ? i.jt : i.jf;
          break;
        }
        case C_RET:
          return (i.code & RVAL) === R_A ? A : i.k >>> 0;
        case C_MISC:
          if (i.code & 0x80) A = X;
          else X = A;
          break;
      }
    }
  } catch (e) {
    if (e === OUT) return 0;
    throw e;
  }
  return 0; // unreachable for a checked program (the last instruction is RET)
}
