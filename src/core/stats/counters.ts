// Traffic counters kept per service, per destination and globally, as the kernel's
// struct ip_vs_stats: connections, packets and bytes in each direction.

export class Counters {
  conns = 0;
  inPkts = 0;
  outPkts = 0;
  inBytes = 0;
  outBytes = 0;

  zero(): void {
    this.conns = 0;
    this.inPkts = 0;
    this.outPkts = 0;
    this.inBytes = 0;
    this.outBytes = 0;
  }

  snapshot(): CounterSnapshot {
    return {
      conns: this.conns,
      inPkts: this.inPkts,
      outPkts: this.outPkts,
      inBytes: this.inBytes,
      outBytes: this.outBytes,
    };
  }
}

export interface CounterSnapshot {
  conns: number;
  inPkts: number;
  outPkts: number;
  inBytes: number;
  outBytes: number;
}
