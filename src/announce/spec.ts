// What tvsd needs to announce its VIPs over BGP through a BIRD 2 instance it runs beside itself:
// the local AS and router id, the BGP peers (usually the ECMP router), timers, and where BIRD's
// files live. Built from tvsd's --announce/--bgp-* options or a keepalived.conf tvs_announce block
// (src/config/keepalived/announce.ts produces the same shape); plain data, no defaults hidden here
// other than the ones DEFAULT_ANNOUNCE names.

export interface BgpPeer {
  /** The peer's address (IPv4 or IPv6, canonical text). VIPs of the same family are announced to it. */
  addr: string;
  /** The peer's AS number. */
  asn: number;
  /** TCP port of the peer's BGP (default 179). */
  port?: number;
  /** Run BFD on this session (sub-second detection of a dead director by the router). */
  bfd?: boolean;
}

export interface AnnounceSpec {
  daemon: "bird";
  /** This director's AS number. */
  asn: number;
  /** BGP router id (an IPv4 address); each director needs its own. */
  routerId: string;
  peers: BgpPeer[];
  /** BGP hold time in seconds (3..65535; BIRD's minimum is 3); keepalive is a third of it. */
  holdTimeS: number;
  /** BFD: transmit/receive interval and multiplier (detection time = interval × multiplier). */
  bfdIntervalMs: number;
  bfdMultiplier: number;
  /** BIRD's executable and birdc's, and the directory for the generated config, socket and log. */
  birdPath: string;
  birdcPath: string;
  runDir: string;
  /**
   * This director's FULLNAT local addresses: announced (/32, /128) for as long as BIRD runs, whatever
   * the VIPs' decisions and during a drain, so real servers' replies to them find this director.
   */
  localAddrs?: string[];
  /**
   * Other directors' FULLNAT local addresses, announced with this director's AS prepended
   * BACKUP_PREPEND times: the router prefers their owner's route and falls back to these (ECMP over
   * the backups) only when the owner is gone. Replies for its connections then reach directors that
   * learned them by connection sync.
   */
  backupAddrs?: string[];
}

/** How many times a backup address's route has this director's AS prepended. */
export const BACKUP_PREPEND = 3;

export const DEFAULT_ANNOUNCE = {
  holdTimeS: 3,
  bfdIntervalMs: 100,
  bfdMultiplier: 3,
  birdPath: "bird",
  birdcPath: "birdc",
} as const;
