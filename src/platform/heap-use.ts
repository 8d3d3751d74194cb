// The process's (or worker thread's) V8 heap in use as a fraction of the heap's limit: the
// "process heap" half of memory pressure for the connection table's defence strategy
// (core/conn/defense.ts; 0.9 or more counts as no memory left).

import { getHeapStatistics } from "node:v8";

export function heapUsedFraction(): number {
  const h = getHeapStatistics();
  return h.heap_size_limit > 0 ? h.used_heap_size / h.heap_size_limit : 0;
}
