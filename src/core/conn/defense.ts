// IPVS's defence strategy against a full connection table (the kernel's update_defense_level and
// ip_vs_todrop, documented in Documentation/networking/ipvs-sysctl.rst), in tvs's terms.
//
// The kernel compares the memory still available with amemthresh; tvs compares the connection
// table's free entries. "Available memory" in tvs, measured once a second by expire():
//
//   available = limit - size            (free entries under --conn-limit)
//   available = 0 when the process heap is under pressure: the host reports the heap's use as a
//               fraction of its limit (ConnTable.heapUsed) and 0.9 or more counts as no memory.
//
// "Low memory" is available < amemthresh (entries, default 1024). Each of drop_entry, drop_packet
// and secure_tcp takes the kernel's four modes:
//
//   0  never on;
//   1  automatic and currently off: low memory turns it on and the value reads 2;
//   2  automatic and currently on: memory back above the threshold turns it off and it reads 1;
//   3  always on.
//
// What each does when on:
//   drop_entry   each second, up to 1/32 of the limit (at least 1, at most 8192) of half-open
//                (SYN_RECV, SYNACK, SYN_SENT) and finished (TIME_WAIT, CLOSE) entries are removed,
//                the ones nearest expiry first (conn-reclaim.ts). Established flows are never
//                touched: a spoofed SYN flood is made of half-open entries.
//   drop_packet  one new connection in every `rate` is refused before it gets an entry. In the
//                automatic mode rate = amemthresh / (amemthresh - available) (integer, so it
//                reaches 1, every new connection, as the table fills); in mode 3 rate = am_droprate.
//   secure_tcp   the secure TCP state table (tcp-states.ts): on a connection whose replies pass
//                the director (NAT, FULLNAT) a client's ACK does not make a SYN_RECV entry
//                ESTABLISHED; only the real server's SYN-ACK followed by the client's ACK does, so
//                spoofed handshakes keep the short SYN_RECV timeout and are reclaimable.
//
// Bounded policy when the table is full, whatever the modes: a new flow first reclaims finished
// and half-open entries (conn-reclaim.ts); if none are left it is refused and counted in
// `dropped`. The table never grows beyond --conn-limit.
//
// Pure: the clock is the caller's `now` (ms), so tests step it.

export interface DefenseSysctls {
  amemthresh: number;
  am_droprate: number;
  drop_entry: number;
  drop_packet: number;
  secure_tcp: number;
}

export const DEFAULT_DEFENSE: DefenseSysctls = {
  amemthresh: 1024,
  am_droprate: 10,
  drop_entry: 0,
  drop_packet: 0,
  secure_tcp: 0,
};

/** Heap use (fraction of the heap's limit) from which the process counts as out of memory. */
export const HEAP_PRESSURE = 0.9;
/** How often the levels are recomputed (the kernel's defense timer: once a second). */
export const DEFENSE_PERIOD_MS = 1000;

export class Defense {
  readonly sysctls: DefenseSysctls = { ...DEFAULT_DEFENSE };
  dropEntryOn = false;
  secureTcpOn = false;
  /** One new connection in `dropRate` is dropped; 0 drops none. */
  dropRate = 0;
  #dropCounter = 0;
  #next = Number.NEGATIVE_INFINITY;
  /** New connections refused by drop_packet. */
  packetsDropped = 0;
  /** Free entries at the last update (after the heap adjustment). */
  available = 0;

  /** Time for the once-a-second update? */
  due(now: number): boolean {
    if (now < this.#next) return false;
    this.#next = now + DEFENSE_PERIOD_MS;
    return true;
  }

  /** Recompute the three strategies from the available entries (update_defense_level). */
  update(available: number): void {
    const s = this.sysctls;
    this.available = available;
    const low = available < s.amemthresh;
    const auto = (mode: number): { mode: number; on: boolean } => {
      if (mode === 1 || mode === 2) return low ? { mode: 2, on: true } : { mode: 1, on: false };
      return { mode, on: mode === 3 };
    };
    const de = auto(s.drop_entry);
    s.drop_entry = de.mode;
    this.dropEntryOn = de.on;
    const st = auto(s.secure_tcp);
    s.secure_tcp = st.mode;
    this.secureTcpOn = st.on;
    const dp = auto(s.drop_packet);
    s.drop_packet = dp.mode;
    let rate = 0;
    if (dp.mode === 3) rate = s.am_droprate;
    else if (dp.on) rate = Math.max(1, Math.floor(s.amemthresh / Math.max(1, s.amemthresh - available)));
    if (rate !== this.dropRate) this.#dropCounter = rate;
    this.dropRate = rate;
  }

  /** Should this new connection be dropped (ip_vs_todrop)? Counts the drop. */
  todrop(): boolean {
    if (this.dropRate === 0) return false;
    if (--this.#dropCounter > 0) return false;
    this.#dropCounter = this.dropRate;
    this.packetsDropped++;
    return true;
  }

  /** Set one of the five by its kernel name (checked by sysctl.ts); a mode takes effect at once. */
  set(name: keyof DefenseSysctls, value: number, available: number): void {
    this.sysctls[name] = value;
    this.update(available);
  }
}
