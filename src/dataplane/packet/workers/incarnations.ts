// Telling a re-created service or destination from the one it replaced. A worker matches the
// image against its replica by value (core's diffTable), which is right for a reload, but wrong
// when the daemon's table deleted a service and added an equal one in the same change (ipvsadm -D
// then -A in one -R): the kernel starts that service afresh (counters zero, its connections
// orphaned), while a by-value match would keep the old one. So the main thread numbers each
// VirtualService and Dest object it sends (an "incarnation"), and the worker first deletes what it
// holds under the same key with another number; the diff then adds it fresh. A destination revived
// from the kernel's trash is the same object, keeps its number, and so keeps its counters, as
// in the kernel.

import type { Dest } from "../../../core/dest.ts";
import { serviceKeyId, type VirtualService } from "../../../core/service.ts";
import type { ServiceTable } from "../../../core/service-table.ts";
import type { ServiceImage } from "../../../core/table-image.ts";

/** Per image service: its incarnation and its destinations' (in the image's destination order). */
export type TableSerials = { svc: number; dests: number[] }[];

/** Main thread: stable numbers for the objects of its table. */
export class Incarnations {
  readonly #numbers = new WeakMap<VirtualService | Dest, number>();
  #next = 1;

  #of(o: VirtualService | Dest): number {
    let n = this.#numbers.get(o);
    if (n === undefined) this.#numbers.set(o, (n = this.#next++));
    return n;
  }

  /** Serials aligned with imageOf(table) (destinations oldest first, the reverse of the list). */
  serials(table: ServiceTable): TableSerials {
    return table.services().map((s) => ({ svc: this.#of(s), dests: s.dests.map((d) => this.#of(d)).reverse() }));
  }
}

/** Worker: the serials its replica holds, and the deletions that make way for new incarnations. */
export class ReplicaSerials {
  readonly #svc = new Map<string, number>();
  readonly #dest = new Map<string, number>();

  /** Delete services and destinations the image replaces with a new incarnation. */
  forgetReplaced(table: ServiceTable, image: readonly ServiceImage[], serials: TableSerials): void {
    for (const [i, s] of image.entries()) {
      const want = serials[i];
      if (!want) continue;
      const id = serviceKeyId(s.key);
      const live = table.get(s.key);
      if (!live) continue;
      if (this.#svc.get(id) !== undefined && this.#svc.get(id) !== want.svc) {
        table.deleteService(s.key);
        continue;
      }
      for (const [j, d] of s.dests.entries()) {
        const key = `${id}|${d.addr}|${d.port}`;
        const had = this.#dest.get(key);
        if (had !== undefined && had !== want.dests[j] && live.findDest(d.addr, d.port))
          table.deleteDest(s.key, d.addr, d.port);
      }
    }
  }

  /** Remember the serials of the image just applied. */
  record(image: readonly ServiceImage[], serials: TableSerials): void {
    this.#svc.clear();
    this.#dest.clear();
    for (const [i, s] of image.entries()) {
      const want = serials[i];
      if (!want) continue;
      const id = serviceKeyId(s.key);
      this.#svc.set(id, want.svc);
      for (const [j, d] of s.dests.entries()) {
        const n = want.dests[j];
        if (n !== undefined) this.#dest.set(`${id}|${d.addr}|${d.port}`, n);
      }
    }
  }
}
