// tvsd's side of ECMP announcing (src/announce/): builds the AnnounceSpec from tvsd's options or a
// keepalived.conf tvs_announce block (options win), gathers what decideVips needs from the live
// table and the health supervisor, and keeps BIRD announcing exactly the VIPs this director can
// serve. It re-decides after every change the daemon makes and on a 100 ms tick (quorum changes
// land through the supervisor's own requests), so a withdrawal reaches BIRD well within a second;
// drain() withdraws everything at once when tvsd starts to stop.

import { type AnnouncerStatus, BirdAnnouncer } from "../announce/bird-process.ts";
import { announcedVips, decideVips, type ServiceServeView, type VipDecision } from "../announce/decide.ts";
import { type AnnounceSpec, DEFAULT_ANNOUNCE } from "../announce/spec.ts";
import { type AnnounceConfig, ownBackupAddrs } from "../config/keepalived/announce.ts";
import type { Logger } from "../core/log.ts";
import { serviceKeyId } from "../core/service-key.ts";
import type { ServiceTable } from "../core/service-table.ts";

const TICK_MS = 100;

/**
 * The spec from a tvs_announce block, with the defaults. Throws naming the block when incomplete,
 * or the word (file:line:col) when a backup_addr is one of `localAddrs` (tvsd's --local-addrs).
 */
export function announceSpecFromConfig(
  c: AnnounceConfig,
  defaultRunDir: string,
  localAddrs: readonly string[] = [],
): AnnounceSpec {
  const where = `${c.origin.file}:${c.origin.line}:${c.origin.column}`;
  if (c.asn === undefined || c.routerId === undefined || c.peers.length === 0)
    throw new Error(`${where}: tvs_announce needs bgp_asn, router_id and a bgp_peer`);
  const own = ownBackupAddrs(c, localAddrs)[0];
  if (own !== undefined) throw new Error(`${own.origin.file}:${own.origin.line}:${own.origin.column}: ${own.message}`);
  return {
    daemon: "bird",
    asn: c.asn,
    routerId: c.routerId,
    peers: c.peers.map((p) => ({ ...p })),
    holdTimeS: c.holdTimeS ?? DEFAULT_ANNOUNCE.holdTimeS,
    bfdIntervalMs: c.bfdIntervalMs ?? DEFAULT_ANNOUNCE.bfdIntervalMs,
    bfdMultiplier: c.bfdMultiplier ?? DEFAULT_ANNOUNCE.bfdMultiplier,
    birdPath: c.birdPath ?? DEFAULT_ANNOUNCE.birdPath,
    birdcPath: c.birdcPath ?? DEFAULT_ANNOUNCE.birdcPath,
    runDir: c.runDir ?? defaultRunDir,
    ...(localAddrs.length > 0 ? { localAddrs: [...localAddrs] } : {}),
    ...(c.backupAddrs !== undefined && c.backupAddrs.length > 0 ? { backupAddrs: [...c.backupAddrs] } : {}),
  };
}

export interface AnnounceHostDeps {
  services: ServiceTable;
  quorumUp: (serviceId: string) => boolean | undefined;
  log: Logger;
  /** Why to announce nothing yet (a sync backup's bulk resync under way), or undefined. */
  hold?: () => string | undefined;
}

export class AnnounceHost {
  readonly spec: AnnounceSpec;
  readonly #deps: AnnounceHostDeps;
  readonly #bird: BirdAnnouncer;
  #timer: NodeJS.Timeout | undefined;
  #draining = false;
  #decisions: VipDecision[] = [];

  constructor(spec: AnnounceSpec, deps: AnnounceHostDeps) {
    this.spec = spec;
    this.#deps = deps;
    this.#bird = new BirdAnnouncer(spec, deps.log);
  }

  views(): ServiceServeView[] {
    return this.#deps.services.services().map((svc) => ({
      addr: svc.key.kind === "vip" ? svc.key.addr : undefined,
      quorumUp: this.#deps.quorumUp(serviceKeyId(svc.key)),
      servingDests: svc.dests.filter((d) => d.available && d.weight > 0).length,
    }));
  }

  #decide(): string[] {
    this.#decisions = decideVips(this.views(), this.#draining, this.#deps.hold?.());
    return announcedVips(this.#decisions);
  }

  async start(): Promise<void> {
    await this.#bird.start(this.#decide());
    this.#timer = setInterval(() => this.update(), TICK_MS);
    this.#timer.unref();
  }

  /** Re-decide and apply (no-op when nothing changed). */
  update(): void {
    this.#bird.apply(this.#decide()).catch((err) => this.#deps.log.warn("Announcement update failed", { err }));
  }

  /** Withdraw every VIP now (tvsd is stopping); resolves once BIRD has sent the withdrawals. */
  async drain(): Promise<void> {
    this.#draining = true;
    await this.#bird.apply(this.#decide());
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#draining = true;
    await this.#bird.stop();
  }

  status(): AnnouncerStatus & { decisions: VipDecision[] } {
    return { ...this.#bird.status(), decisions: this.#decisions };
  }
}
