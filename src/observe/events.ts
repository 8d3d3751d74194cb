// The event bus an operator follows: real servers going down or up, a service's quorum lost or
// regained, reloads, services added or removed, VRRP failovers and sync state. The daemon (control/)
// publishes; the HTTP endpoint streams them (/events, the dashboard's feed) and the metrics count
// health-check transitions from them. Events are plain JSON-able data with a sequence number, so an
// SSE client that reconnects with Last-Event-ID gets what it missed from the ring of recent events.

export type TvsEventType =
  | "dest-down"
  | "dest-up"
  | "quorum-lost"
  | "quorum-gained"
  | "reload"
  | "reload-refused"
  | "service-added"
  | "service-removed"
  | "vrrp-state"
  | "sync-state";

/** What a publisher gives: the type, a one-line message for people, and fields for tools. */
export interface TvsEventInput {
  type: TvsEventType;
  message: string;
  /** Service id as serviceKeyId prints it ("tcp 10.0.0.1:80"), when the event is about one. */
  service?: string;
  /** Real server "ADDR:PORT", when the event is about one. */
  dest?: string;
  /** Anything else worth keeping (reason, previous state, VRRP instance, ...). */
  detail?: Record<string, string | number | boolean>;
}

/** A published event: the input plus its sequence number and wall-clock time (ISO 8601). */
export interface TvsEvent extends TvsEventInput {
  seq: number;
  time: string;
}

export type EventListener = (e: TvsEvent) => void;

export const DEFAULT_EVENT_HISTORY = 500;

export class EventBus {
  readonly #ring: TvsEvent[] = [];
  readonly #capacity: number;
  readonly #listeners = new Set<EventListener>();
  readonly #now: () => Date;
  #seq = 0;

  constructor(opts: { capacity?: number; now?: () => Date } = {}) {
    this.#capacity = Math.max(1, opts.capacity ?? DEFAULT_EVENT_HISTORY);
    this.#now = opts.now ?? (() => new Date());
  }

  /** Record and deliver an event; a listener that throws is dropped, never the publisher's problem. */
  publish(input: TvsEventInput): TvsEvent {
    const e: TvsEvent = { seq: ++this.#seq, time: this.#now().toISOString(), ...input };
    this.#ring.push(e);
    if (this.#ring.length > this.#capacity) this.#ring.shift();
    for (const l of [...this.#listeners]) {
      try {
        l(e);
      } catch {
        this.#listeners.delete(l);
      }
    }
    return e;
  }

  /** Follow new events; returns the function that stops following. */
  subscribe(listener: EventListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Recent events, oldest first; only those after `afterSeq` when given (SSE Last-Event-ID). */
  recent(afterSeq = 0): TvsEvent[] {
    return this.#ring.filter((e) => e.seq > afterSeq);
  }

  /** The last sequence number handed out (0 before the first event). */
  get lastSeq(): number {
    return this.#seq;
  }

  get listeners(): number {
    return this.#listeners.size;
  }
}
