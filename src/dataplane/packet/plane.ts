// The packet data plane as tvsd sees it (the DataPlane shape of src/control/dataplane.ts, matched
// structurally): raw frames on one interface, the pipeline (pipeline.ts) on the daemon's tables
// or on packet workers' replicas. Two classes share the admission rules and the host guard
// (plane-shared.ts): LoopPacketPlane runs the pipeline on the main thread (--workers 1, the
// default; loop-plane.ts), PoolPacketPlane on N worker threads in one PACKET_FANOUT group
// (pool-plane.ts). createPacketDataPlane picks one.

import { loadNative } from "../../platform/native-addon.ts";
import { LoopPacketPlane } from "./loop-plane.ts";
import { type PacketDataPlaneOptions, type PacketPlaneDeps, workerCount } from "./plane-shared.ts";
import { PoolPacketPlane } from "./pool-plane.ts";

export { LoopPacketPlane } from "./loop-plane.ts";
export type { PacketDataPlaneOptions, PacketPlaneDeps, PlaneSync } from "./plane-shared.ts";
export { PoolPacketPlane } from "./pool-plane.ts";

/** Either packet plane. */
export type PacketDataPlane = LoopPacketPlane | PoolPacketPlane;

/**
 * Create the packet data plane: on the main loop for one worker (or an injected io), else on a
 * worker pool. Throws NativeUnavailableError (saying why and what to do) when the native addon
 * cannot load; start() throws when the interface cannot be opened (no such interface, no
 * CAP_NET_RAW).
 */
export function createPacketDataPlane(options: PacketDataPlaneOptions): PacketDataPlane {
  if (!options.io) loadNative(); // fail now, with the reason and the remedy, if the addon is missing
  return workerCount(options) > 1 ? new PoolPacketPlane(options) : new LoopPacketPlane(options);
}

/**
 * The form tvsd-main loads: `createPacketPlane(deps, { interface, ... })`. Same as
 * createPacketDataPlane with the daemon's dependencies and the plane's options kept apart.
 */
export function createPacketPlane(
  deps: PacketPlaneDeps,
  opts: Omit<PacketDataPlaneOptions, keyof PacketPlaneDeps>,
): PacketDataPlane {
  return createPacketDataPlane({ ...opts, ...deps });
}
