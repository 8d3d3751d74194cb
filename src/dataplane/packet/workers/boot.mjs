// Entry of every packet worker thread. The sources are TypeScript run through tsx, and a worker
// thread does not inherit the main thread's loader hooks, so this plain module registers tsx in
// the new thread first and then imports the worker module named in workerData.entry.
import { workerData } from "node:worker_threads";
import { register } from "tsx/esm/api";

register();
await import(workerData.entry);
