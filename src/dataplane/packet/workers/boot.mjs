// Entry of every packet worker thread: imports the worker module named in workerData.entry. When
// that is TypeScript (tests and a checkout run the sources through tsx), tsx is registered in the
// new thread first, since a worker thread does not inherit the main thread's loader hooks; the
// compiled package (dist/, .js) needs no tsx, which is a development dependency only.
import { workerData } from "node:worker_threads";

if (workerData.entry.endsWith(".ts")) {
  const { register } = await import("tsx/esm/api");
  register();
}
await import(workerData.entry);
