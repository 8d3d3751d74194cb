// The packet data plane's public face for tvsd, the lab and the real-server helper:
// createPacketDataPlane (the DataPlane tvsd runs with --dataplane packet), the native addon
// loader (raw IP sockets and TUN for VRRP and the real server's IPIP decapsulation), the PacketIo
// seam with its memory fake, and the pipeline for tests and benchmarks.

export {
  explainSocketError,
  loadNative,
  type NativeAddon,
  NativeUnavailableError,
  nativeStatus,
} from "../../platform/native-addon.ts";
export type { PlaneCounterSnapshot } from "./counters.ts";
export { PacketEngine } from "./engine.ts";
export { FrameBatch, type PacketIo } from "./io.ts";
export { MemoryPacketIo } from "./memory-io.ts";
export { NativePacketIo } from "./native-io.ts";
export { Pipeline, type PipelineOptions } from "./pipeline.ts";
export {
  createPacketDataPlane,
  createPacketPlane,
  LoopPacketPlane,
  type PacketDataPlane,
  type PacketDataPlaneOptions,
  type PacketPlaneDeps,
  PoolPacketPlane,
} from "./plane.ts";
