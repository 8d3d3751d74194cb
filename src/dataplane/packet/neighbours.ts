// A small neighbour cache (the director's own ARP / IPv6 ND table for real servers and gateways).
// Entries are learned from ARP replies and neighbour advertisements, and from requests that
// target our VIPs. An address we need but do not know gets a probe (at most one per second) and
// up to QUEUE_MAX frames are held until the answer comes, as Linux's unres_qlen does. A known
// entry older than REACHABLE_MS is still used while a fresh probe goes out (Linux's STALE).

export const REACHABLE_MS = 30_000;
export const PROBE_INTERVAL_MS = 1_000;
export const QUEUE_MAX = 8;
export const CACHE_MAX = 4096;

export interface Neighbour {
  mac: Uint8Array | undefined;
  updated: number;
  lastProbe: number;
  queue: Buffer[];
}

export class Neighbours {
  readonly #map = new Map<string, Neighbour>();
  /**
   * Told of every entry learned from the wire that is new, changed its MAC or was refreshed after
   * going stale (packet workers pass it on so the workers that did not receive the ARP reply
   * learn it too).
   */
  onLearn: ((addr: string, mac: Uint8Array) => void) | undefined = undefined;

  get size(): number {
    return this.#map.size;
  }

  get(addr: string): Neighbour | undefined {
    return this.#map.get(addr);
  }

  /** The MAC to use now, or undefined. */
  mac(addr: string): Uint8Array | undefined {
    return this.#map.get(addr)?.mac;
  }

  /** The entry for addr, created empty when unknown (one map lookup on the forwarding path). */
  entry(addr: string): Neighbour {
    return this.#entry(addr);
  }

  /** Whether entry n needs a probe now (unknown or stale, and none sent within a second); marks it probed. */
  probeDue(n: Neighbour, now: number): boolean {
    if (n.mac !== undefined && now - n.updated < REACHABLE_MS) return false;
    if (now - n.lastProbe < PROBE_INTERVAL_MS) return false;
    n.lastProbe = now;
    return true;
  }

  /** Whether a probe for addr should be sent now (unknown or stale, and none sent within a second). */
  wantsProbe(addr: string, now: number): boolean {
    const n = this.#entry(addr);
    if (n.mac !== undefined && now - n.updated < REACHABLE_MS) return false;
    if (now - n.lastProbe < PROBE_INTERVAL_MS) return false;
    n.lastProbe = now;
    return true;
  }

  /** Hold a copy of a frame until addr resolves; false when the queue is full. */
  hold(addr: string, frame: Uint8Array): boolean {
    const n = this.#entry(addr);
    if (n.queue.length >= QUEUE_MAX) return false;
    n.queue.push(Buffer.from(frame));
    return true;
  }

  /**
   * Record addr → mac. With `create` false only an existing entry is updated (Linux does not
   * create entries from unsolicited ARP). Returns the frames that were waiting for it.
   */
  learn(addr: string, mac: Uint8Array, now: number, create: boolean, fromPeer = false): Buffer[] {
    let n = this.#map.get(addr);
    if (!n) {
      if (!create) return [];
      n = this.#entry(addr);
    }
    // Passed on when new, changed, or refreshed after going stale (other workers' copies age too,
    // and the answers to their probes arrive here): at most once per REACHABLE_MS per entry.
    const news = n.mac === undefined || !sameMac(n.mac, mac) || now - n.updated >= REACHABLE_MS;
    if (n.mac === undefined || n.mac.length !== 6) n.mac = new Uint8Array(6);
    n.mac.set(mac.subarray(0, 6));
    if (news && !fromPeer) this.onLearn?.(addr, n.mac);
    n.updated = now;
    return n.queue.splice(0);
  }

  forget(addr: string): void {
    this.#map.delete(addr);
  }

  entries(): IterableIterator<[string, Neighbour]> {
    return this.#map.entries();
  }

  #entry(addr: string): Neighbour {
    let n = this.#map.get(addr);
    if (!n) {
      if (this.#map.size >= CACHE_MAX) {
        const oldest = this.#map.keys().next().value;
        if (oldest !== undefined) this.#map.delete(oldest);
      }
      n = { mac: undefined, updated: -Infinity, lastProbe: -Infinity, queue: [] };
      this.#map.set(addr, n);
    }
    return n;
  }
}

function sameMac(a: Uint8Array, b: Uint8Array): boolean {
  for (let i = 0; i < 6; i++) if (a[i] !== b[i]) return false;
  return true;
}
