// /metrics: the daemon's state as Prometheus text exposition (or OpenMetrics when the scraper asks
// for it), built with prom-client. Values are collected on scrape: one read of the ObserveSource per
// scrape, then every metric's collect() sets its series from that read (series of removed services
// disappear, because each collect starts from reset()).
//
// Names, so existing dashboards and alerts work unchanged:
// - node_exporter's ipvs collector for what IPVS itself reports: node_ipvs_connections_total,
//   node_ipvs_{incoming,outgoing}_{packets,bytes}_total (no labels) and node_ipvs_backend_
//   {connections_active,connections_inactive,weight} with local_address, local_port,
//   remote_address, remote_port, proto ("TCP", "UDP", "SCTP", or "FWM" with local_mark the mark
//   in 8 hex digits as /proc/net/ip_vs prints it) and local_mark.
// - keepalived-exporter's for VRRP: keepalived_vrrp_state{iname,intf,vrid,ip_address} (0 INIT,
//   1 BACKUP, 2 MASTER, 3 FAULT; one series per virtual address), keepalived_advertisements_
//   {received,sent}_total, keepalived_become_master_total, keepalived_release_master_total and the
//   error counters, labelled {iname,intf,vrid}.
// - tvs_* for the rest (per-service and per-destination counters, health checks, the connection
//   table, data-plane drops by reason, workers, sync, events), and prom-client's standard process_*
//   and nodejs_* metrics (CPU, memory, file descriptors, event loop lag).
//
// Two registries hold two sets of metric objects (text and OpenMetrics): prom-client renames a
// counter in place when it renders OpenMetrics, so one object cannot serve both formats.

import client from "prom-client";
import type { CheckView, DestView, ServiceView } from "../control/api/protocol.ts";
import type { TvsEvent } from "./events.ts";
import { type ObservedState, type ObserveSource, type PlanePressureView, VRRP_ERROR_COUNTERS } from "./source.ts";

export const PROMETHEUS_CONTENT_TYPE = client.Registry.PROMETHEUS_CONTENT_TYPE;
export const OPENMETRICS_CONTENT_TYPE = client.Registry.OPENMETRICS_CONTENT_TYPE;

const SERVICE_LABELS = ["local_address", "local_port", "proto", "local_mark"] as const;
const BACKEND_LABELS = ["local_address", "local_port", "remote_address", "remote_port", "proto", "local_mark"] as const;
const CHECK_LABELS = ["service", "backend", "checker"] as const;
const VRRP_LABELS = ["iname", "intf", "vrid"] as const;

type Labels = Record<string, string>;

/** keepalived-exporter's numbers for VRRP states. */
export const VRRP_STATE_VALUE: Record<string, number> = { INIT: 0, BACKUP: 1, MASTER: 2, FAULT: 3, STOP: 0 };

/** node_exporter's labels for a service (the "local" side). */
export function serviceLabels(s: ServiceView): Labels {
  const k = s.key;
  if (k.kind === "fwmark")
    return {
      local_address: "",
      local_port: "0",
      proto: "FWM",
      local_mark: k.fwmark.toString(16).toUpperCase().padStart(8, "0"),
    };
  return { local_address: k.addr, local_port: String(k.port), proto: k.protocol.toUpperCase(), local_mark: "" };
}

export function backendLabels(s: ServiceView, d: DestView): Labels {
  return { ...serviceLabels(s), remote_address: d.spec.addr, remote_port: String(d.spec.port) };
}

function checkLabels(c: CheckView): Labels {
  return { service: c.service, backend: c.dest, checker: c.checker };
}

interface MetricsOptions {
  /** Events so far (health transitions and the per-type count are kept from them). */
  subscribe?: (listener: (e: TvsEvent) => void) => () => void;
  /** Include prom-client's process_* / nodejs_* metrics (default true). */
  processMetrics?: boolean;
  version?: string;
}

/** Counts taken from the event stream (it is the only place transitions are seen one by one). */
class EventCounts {
  readonly byType = new Map<string, number>();
  /** "service\0backend" → {down, up}. */
  readonly transitions = new Map<string, { service: string; backend: string; down: number; up: number }>();

  add(e: TvsEvent): void {
    this.byType.set(e.type, (this.byType.get(e.type) ?? 0) + 1);
    if ((e.type === "dest-down" || e.type === "dest-up") && e.service !== undefined && e.dest !== undefined) {
      const key = `${e.service}\0${e.dest}`;
      const t = this.transitions.get(key) ?? { service: e.service, backend: e.dest, down: 0, up: 0 };
      if (e.type === "dest-down") t.down++;
      else t.up++;
      this.transitions.set(key, t);
    }
  }
}

type Read = () => ObservedState;

/**
 * One metric family whose series are set from the daemon's read on every scrape, handed to
 * prom-client's registry as a collector (the registry renders and escapes it, in either format).
 * Like the Go client's const metrics: no per-series state between scrapes, no label hashing, so
 * 100,000 series (10,000 real servers) cost one pass over the table.
 */
class SeriesMetric {
  name: string;
  readonly help: string;
  readonly type: "counter" | "gauge";
  readonly labelNames: readonly string[];
  readonly aggregator = "sum";
  readonly #fill: (set: (l: Labels, v: number) => void) => void;

  constructor(
    name: string,
    help: string,
    type: "counter" | "gauge",
    labelNames: readonly string[],
    fill: (set: (l: Labels, v: number) => void) => void,
  ) {
    this.name = name;
    this.help = help;
    this.type = type;
    this.labelNames = labelNames;
    this.#fill = fill;
  }

  async get(): Promise<{
    name: string;
    help: string;
    type: string;
    aggregator: string;
    values: { labels: Labels; value: number }[];
  }> {
    const values: { labels: Labels; value: number }[] = [];
    const counter = this.type === "counter";
    this.#fill((labels, v) => values.push({ labels, value: counter ? Math.max(0, v) : v }));
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  reset(): void {}
}

function defineMetrics(reg: client.Registry, read: Read, counts: EventCounts, version: string): void {
  // Label objects made once per scrape and shared by every family (the read's views are the keys,
  // so the next scrape's read starts afresh and these are collected with it).
  let labelCache = new WeakMap<object, Labels>();
  let cachedFor: ObservedState | undefined;
  const labelsOf = (view: object, make: () => Labels): Labels => {
    const state = read();
    if (state !== cachedFor) {
      labelCache = new WeakMap();
      cachedFor = state;
    }
    let l = labelCache.get(view);
    if (!l) {
      l = make();
      labelCache.set(view, l);
    }
    return l;
  };
  // A counter whose value is set from the daemon's own total (never incremented here).
  const counter = (
    name: string,
    help: string,
    labelNames: readonly string[],
    fill: (set: (l: Labels, v: number) => void) => void,
  ) => reg.registerMetric(new SeriesMetric(name, help, "counter", labelNames, fill) as unknown as client.Metric);
  const gauge = (
    name: string,
    help: string,
    labelNames: readonly string[],
    fill: (set: (l: Labels, v: number) => void) => void,
  ) => reg.registerMetric(new SeriesMetric(name, help, "gauge", labelNames, fill) as unknown as client.Metric);
  const total = (f: (s: ObservedState) => number) => (set: (l: Labels, v: number) => void) => set({}, f(read()));

  // node_exporter ipvs collector.
  counter(
    "node_ipvs_connections_total",
    "The total number of connections made.",
    [],
    total((s) => s.snapshot.stats.conns),
  );
  counter(
    "node_ipvs_incoming_packets_total",
    "The total number of incoming packets.",
    [],
    total((s) => s.snapshot.stats.inPkts),
  );
  counter(
    "node_ipvs_outgoing_packets_total",
    "The total number of outgoing packets.",
    [],
    total((s) => s.snapshot.stats.outPkts),
  );
  counter(
    "node_ipvs_incoming_bytes_total",
    "The total amount of incoming data.",
    [],
    total((s) => s.snapshot.stats.inBytes),
  );
  counter(
    "node_ipvs_outgoing_bytes_total",
    "The total amount of outgoing data.",
    [],
    total((s) => s.snapshot.stats.outBytes),
  );
  const perBackend = (f: (d: DestView) => number) => (set: (l: Labels, v: number) => void) => {
    // node_exporter sums backends that share a label set. Within one VIP service every real server
    // is distinct; only fwmark services of both families with one mark can share labels.
    let sums: Map<string, { l: Labels; v: number }> | undefined;
    for (const s of read().snapshot.services) {
      const local = labelsOf(s, () => serviceLabels(s));
      for (const d of s.dests) {
        const l = labelsOf(d, () => ({ ...local, remote_address: d.spec.addr, remote_port: String(d.spec.port) }));
        if (s.key.kind !== "fwmark") {
          set(l, f(d));
          continue;
        }
        sums ??= new Map();
        const key = `${local.local_mark}\0${l.remote_address}\0${l.remote_port}`;
        const cur = sums.get(key);
        if (cur) cur.v += f(d);
        else sums.set(key, { l, v: f(d) });
      }
    }
    for (const { l, v } of sums?.values() ?? []) set(l, v);
  };
  gauge(
    "node_ipvs_backend_connections_active",
    "The current active connections by local and remote address.",
    BACKEND_LABELS,
    perBackend((d) => d.activeConns),
  );
  gauge(
    "node_ipvs_backend_connections_inactive",
    "The current inactive connections by local and remote address.",
    BACKEND_LABELS,
    perBackend((d) => d.inactConns),
  );
  gauge(
    "node_ipvs_backend_weight",
    "The current backend weight by local and remote address.",
    BACKEND_LABELS,
    perBackend((d) => d.spec.weight),
  );

  // Per service.
  const perService = (f: (s: ServiceView) => number) => (set: (l: Labels, v: number) => void) => {
    for (const s of read().snapshot.services)
      set(
        labelsOf(s, () => serviceLabels(s)),
        f(s),
      );
  };
  counter(
    "tvs_service_connections_total",
    "Connections scheduled by the virtual service.",
    SERVICE_LABELS,
    perService((s) => s.stats.conns),
  );
  counter(
    "tvs_service_incoming_packets_total",
    "Packets from clients to the virtual service.",
    SERVICE_LABELS,
    perService((s) => s.stats.inPkts),
  );
  counter(
    "tvs_service_outgoing_packets_total",
    "Packets from real servers to clients of the virtual service.",
    SERVICE_LABELS,
    perService((s) => s.stats.outPkts),
  );
  counter(
    "tvs_service_incoming_bytes_total",
    "Bytes from clients to the virtual service.",
    SERVICE_LABELS,
    perService((s) => s.stats.inBytes),
  );
  counter(
    "tvs_service_outgoing_bytes_total",
    "Bytes from real servers to clients of the virtual service.",
    SERVICE_LABELS,
    perService((s) => s.stats.outBytes),
  );
  gauge(
    "tvs_service_backends",
    "Real servers in the virtual service (weight 0 included).",
    SERVICE_LABELS,
    perService((s) => s.dests.length),
  );
  gauge(
    "tvs_service_info",
    "Scheduler and persistence of the virtual service (value 1).",
    [...SERVICE_LABELS, "scheduler", "persistent"],
    (set) => {
      for (const s of read().snapshot.services)
        set(
          {
            ...serviceLabels(s),
            scheduler: s.options.scheduler,
            persistent: s.options.persistent ? String(s.options.timeout) : "",
          },
          1,
        );
    },
  );
  gauge(
    "tvs_services",
    "Virtual services in the table.",
    [],
    total((s) => s.snapshot.services.length),
  );

  // Per destination (node_exporter has only the gauges).
  counter(
    "tvs_backend_connections_total",
    "Connections scheduled to the real server.",
    BACKEND_LABELS,
    perBackend((d) => d.stats.conns),
  );
  counter(
    "tvs_backend_incoming_packets_total",
    "Packets forwarded to the real server.",
    BACKEND_LABELS,
    perBackend((d) => d.stats.inPkts),
  );
  counter(
    "tvs_backend_outgoing_packets_total",
    "Packets from the real server to clients.",
    BACKEND_LABELS,
    perBackend((d) => d.stats.outPkts),
  );
  counter(
    "tvs_backend_incoming_bytes_total",
    "Bytes forwarded to the real server.",
    BACKEND_LABELS,
    perBackend((d) => d.stats.inBytes),
  );
  counter(
    "tvs_backend_outgoing_bytes_total",
    "Bytes from the real server to clients.",
    BACKEND_LABELS,
    perBackend((d) => d.stats.outBytes),
  );
  gauge(
    "tvs_backend_connections_persistent",
    "Persistence templates pointing at the real server.",
    BACKEND_LABELS,
    perBackend((d) => d.persistConns),
  );
  gauge(
    "tvs_backend_overloaded",
    "1 while the real server is over its upper connection threshold.",
    BACKEND_LABELS,
    perBackend((d) => (d.overloaded ? 1 : 0)),
  );

  // Health checks.
  const perCheck = (f: (c: CheckView) => number | undefined) => (set: (l: Labels, v: number) => void) => {
    for (const c of read().status.checks) {
      const v = f(c);
      if (v !== undefined) set(checkLabels(c), v);
    }
  };
  gauge(
    "tvs_healthcheck_up",
    "1 when the real server's check passes (or it has none), 0 when down or not yet checked.",
    CHECK_LABELS,
    perCheck((c) => (c.state === "up" ? 1 : 0)),
  );
  gauge(
    "tvs_healthcheck_pending",
    "1 until the check has a first result.",
    CHECK_LABELS,
    perCheck((c) => (c.lastResult === "none" ? 1 : 0)),
  );
  gauge(
    "tvs_healthcheck_latency_seconds",
    "Duration of the last check attempt.",
    CHECK_LABELS,
    perCheck((c) => (c.latencyMs === undefined ? undefined : c.latencyMs / 1000)),
  );
  gauge(
    "tvs_healthcheck_last_check_age_seconds",
    "Seconds since the last check result.",
    CHECK_LABELS,
    perCheck((c) => (c.lastCheckAgoMs === undefined ? undefined : c.lastCheckAgoMs / 1000)),
  );
  gauge(
    "tvs_healthcheck_state_age_seconds",
    "Seconds since the check last changed state.",
    CHECK_LABELS,
    perCheck((c) => c.sinceChangeMs / 1000),
  );
  counter(
    "tvs_healthcheck_checks_total",
    "Check attempts with a result.",
    CHECK_LABELS,
    perCheck((c) => c.checks),
  );
  counter(
    "tvs_healthcheck_transitions_total",
    "Real server health transitions since tvsd started, by new state.",
    ["service", "backend", "to"],
    (set) => {
      for (const t of counts.transitions.values()) {
        set({ service: t.service, backend: t.backend, to: "down" }, t.down);
        set({ service: t.service, backend: t.backend, to: "up" }, t.up);
      }
    },
  );

  // Connection table and data plane.
  gauge(
    "tvs_connection_table_entries",
    "Connection entries held (templates included).",
    [],
    total((s) => s.runtime.connEntries),
  );
  gauge(
    "tvs_connection_table_limit",
    "Most connection entries the table takes (--conn-limit).",
    [],
    total((s) => s.runtime.connLimit),
  );
  gauge(
    "tvs_connection_table_size",
    "Hash table size ipvsadm reports (size=...).",
    [],
    total((s) => s.snapshot.connTableSize),
  );
  counter(
    "tvs_connection_table_refused_total",
    "New connections refused because the table was full.",
    [],
    total((s) => s.runtime.connRefused),
  );
  gauge(
    "tvs_open_flows",
    "Flows the data plane carries now (sockets on the socket plane).",
    [],
    total((s) => s.runtime.openFlows),
  );
  // The socket plane's descriptor budget and UDP flow table (absent on the packet plane).
  const pressure =
    (f: (p: PlanePressureView) => number) =>
    (set: (l: Labels, v: number) => void): void => {
      const p = read().runtime.pressure;
      if (p && Number.isFinite(f(p))) set({}, f(p));
    };
  gauge(
    "tvs_dataplane_fds",
    "File descriptors the data plane holds.",
    [],
    pressure((p) => p.fdUsed),
  );
  gauge(
    "tvs_dataplane_fd_limit",
    "File descriptors the data plane may hold (the process limit less the control reserve).",
    [],
    pressure((p) => p.fdLimit),
  );
  gauge(
    "tvs_dataplane_fd_reserve",
    "File descriptors kept for the control socket (--fd-reserve).",
    [],
    pressure((p) => p.fdReserve),
  );
  counter(
    "tvs_dataplane_fd_refused_total",
    "Sockets refused because the data plane was at its descriptor limit.",
    [],
    pressure((p) => p.fdRefused),
  );
  gauge(
    "tvs_udp_flows",
    "UDP flows the socket plane holds.",
    [],
    pressure((p) => p.udpFlows),
  );
  gauge(
    "tvs_udp_flow_limit",
    "Most UDP flows the socket plane holds (--udp-flow-limit).",
    [],
    pressure((p) => p.udpFlowLimit),
  );
  gauge(
    "tvs_udp_sockets",
    "Sockets the UDP flows share.",
    [],
    pressure((p) => p.udpSockets),
  );
  counter(
    "tvs_udp_flows_evicted_total",
    "UDP flows evicted because the flow table was full.",
    [],
    pressure((p) => p.udpEvicted),
  );
  gauge(
    "tvs_dataplane_workers",
    "Data-plane workers (threads or processes).",
    [],
    total((s) => s.runtime.workers),
  );
  gauge("tvs_dataplane_info", "The data plane tvsd runs (value 1).", ["dataplane"], (set) =>
    set({ dataplane: read().status.dataplane }, 1),
  );
  const plane =
    (f: (p: NonNullable<ObservedState["runtime"]["plane"]>) => number) => (set: (l: Labels, v: number) => void) => {
      const p = read().runtime.plane;
      if (p) set({}, f(p));
    };
  counter(
    "tvs_dataplane_frames_received_total",
    "Frames the packet plane received.",
    [],
    plane((p) => p.rx),
  );
  counter(
    "tvs_dataplane_received_bytes_total",
    "Bytes the packet plane received.",
    [],
    plane((p) => p.rxBytes),
  );
  counter(
    "tvs_dataplane_frames_sent_total",
    "Frames the packet plane sent.",
    [],
    plane((p) => p.tx),
  );
  counter(
    "tvs_dataplane_send_errors_total",
    "Frames the packet plane could not send.",
    [],
    plane((p) => p.txErrors),
  );
  counter("tvs_dataplane_frames_total", "Received frames by verdict.", ["verdict"], (set) => {
    const p = read().runtime.plane;
    if (!p) return;
    for (const [verdict, v] of [
      ["forward", p.forwarded],
      ["reply", p.replied],
      ["consume", p.consumed],
      ["ignore", p.ignored],
      ["drop", p.dropped],
    ] as const)
      set({ verdict }, v);
  });
  counter("tvs_dataplane_drops_total", "Frames dropped by the packet plane, by reason.", ["reason"], (set) => {
    const p = read().runtime.plane;
    if (p) for (const [reason, v] of Object.entries(p.drops)) set({ reason }, v);
  });
  counter(
    "tvs_dataplane_socket_drops_total",
    "Frames the kernel dropped at the packet plane's sockets (receive queue full) before tvs read them.",
    [],
    (set) => {
      const p = read().runtime.plane;
      if (p?.socketDrops !== undefined) set({}, p.socketDrops);
    },
  );
  counter(
    "tvs_dataplane_ipv6_reassembly_total",
    "IPv6 fragment reassembly on the packet plane: fragments taken, datagrams reassembled, handed to another worker, timed out, evicted for memory, fragments sent when cutting them again, and unfragmented packets with extension headers handed to their flow's worker (ext_handoff).",
    ["event"],
    (set) => {
      const r = read().runtime.plane?.reassembly;
      if (!r) return;
      for (const [event, v] of [
        ["fragment_in", r.fragmentsIn],
        ["reassembled", r.reassembled],
        ["handoff", r.handoffs],
        ["ext_handoff", r.extHandoffs ?? 0],
        ["timeout", r.timeouts],
        ["evicted", r.evicted],
        ["fragment_out", r.fragmentsOut],
      ] as const)
        set({ event }, v);
    },
  );
  gauge(
    "tvs_dataplane_ipv6_reassembly_bytes",
    "Bytes the packet plane's IPv6 reassembler holds (all workers).",
    [],
    plane((p) => p.reassembly?.memory ?? 0),
  );
  counter(
    "tvs_synproxy_cookies_total",
    "SYN proxy cookies: SYN-ACKs sent with one, client ACKs whose cookie was valid or invalid.",
    ["result"],
    (set) => {
      const c = read().runtime.plane?.synCookies;
      if (!c) return;
      set({ result: "sent" }, c.sent);
      set({ result: "valid" }, c.valid);
      set({ result: "invalid" }, c.invalid);
    },
  );

  // Sync.
  const syncLabels = ["role", "syncid", "interface"] as const;
  gauge(
    "tvs_sync_daemon_running",
    "Connection sync daemons started (ipvsadm --start-daemon), value 1.",
    syncLabels,
    (set) => {
      const s = read();
      const seen = new Set<string>();
      for (const d of s.snapshot.daemons) {
        seen.add(d.state);
        set({ role: d.state, syncid: String(d.syncId), interface: d.mcastIfn }, 1);
      }
      for (const v of s.sync)
        if (!seen.has(v.role))
          set({ role: v.role, syncid: String(v.syncId), interface: v.interface }, v.state === "stopped" ? 0 : 1);
    },
  );
  const perSync = (f: (v: ObservedState["sync"][number]) => number) => (set: (l: Labels, v: number) => void) => {
    for (const v of read().sync) set({ role: v.role, syncid: String(v.syncId), interface: v.interface }, f(v));
  };
  counter(
    "tvs_sync_messages_sent_total",
    "Sync messages sent.",
    syncLabels,
    perSync((v) => v.messagesSent),
  );
  counter(
    "tvs_sync_messages_received_total",
    "Sync messages received and accepted.",
    syncLabels,
    perSync((v) => v.messagesReceived),
  );
  counter(
    "tvs_sync_connections_sent_total",
    "Connection entries sent in sync messages.",
    syncLabels,
    perSync((v) => v.connectionsSent),
  );
  counter(
    "tvs_sync_connections_received_total",
    "Connection entries received in sync messages.",
    syncLabels,
    perSync((v) => v.connectionsReceived),
  );
  counter("tvs_sync_errors_total", "Sync messages refused, by reason.", [...syncLabels, "reason"], (set) => {
    for (const v of read().sync)
      for (const [reason, n] of Object.entries(v.errors))
        set({ role: v.role, syncid: String(v.syncId), interface: v.interface, reason }, n);
  });

  // VRRP (keepalived-exporter).
  gauge(
    "keepalived_vrrp_state",
    "State of the VRRP instance (0 INIT, 1 BACKUP, 2 MASTER, 3 FAULT).",
    [...VRRP_LABELS, "ip_address"],
    (set) => {
      for (const v of read().vrrp) {
        const l = { iname: v.name, intf: v.interface, vrid: String(v.vrid) };
        const value = VRRP_STATE_VALUE[v.state] ?? 0;
        if (v.addresses.length === 0) set({ ...l, ip_address: "" }, value);
        for (const a of v.addresses) set({ ...l, ip_address: a }, value);
      }
    },
  );
  const perVrrp =
    (f: (v: ObservedState["vrrp"][number]) => number | undefined) => (set: (l: Labels, v: number) => void) => {
      for (const v of read().vrrp) {
        const n = f(v);
        if (n !== undefined) set({ iname: v.name, intf: v.interface, vrid: String(v.vrid) }, n);
      }
    };
  counter(
    "keepalived_advertisements_received_total",
    "Advertisements received.",
    VRRP_LABELS,
    perVrrp((v) => v.advertisementsReceived),
  );
  counter(
    "keepalived_advertisements_sent_total",
    "Advertisements sent.",
    VRRP_LABELS,
    perVrrp((v) => v.advertisementsSent),
  );
  counter(
    "keepalived_become_master_total",
    "Times the instance became master.",
    VRRP_LABELS,
    perVrrp((v) => v.becameMaster),
  );
  counter(
    "keepalived_release_master_total",
    "Times the instance released master.",
    VRRP_LABELS,
    perVrrp((v) => v.releasedMaster),
  );
  for (const name of VRRP_ERROR_COUNTERS)
    counter(
      `keepalived_${name}_total`,
      `VRRP ${name.replaceAll("_", " ")}.`,
      VRRP_LABELS,
      perVrrp((v) => v.errors?.[name] ?? 0),
    );
  gauge(
    "tvs_vrrp_priority",
    "Effective priority of the VRRP instance.",
    VRRP_LABELS,
    perVrrp((v) => v.effectivePriority ?? v.priority),
  );

  // Events and the daemon itself.
  counter("tvs_events_total", "Events published since tvsd started, by type.", ["type"], (set) => {
    for (const [type, n] of counts.byType) set({ type }, n);
  });
  gauge(
    "tvs_uptime_seconds",
    "Seconds since tvsd started.",
    [],
    total((s) => s.status.uptimeMs / 1000),
  );
  gauge(
    "tvs_build_info",
    "tvs version and the IPVS version it reproduces (value 1).",
    ["version", "ipvs_version"],
    (set) => set({ version, ipvs_version: read().snapshot.version }, 1),
  );
}

/**
 * prom-client's default process_* and nodejs_* metrics, less the gauges it names *_total
 * (nodejs_active_handles_total, ...), which `promtool check metrics` rejects: a gauge must not
 * look like a counter. Each registry gets its own objects (see the header).
 */
function addProcessMetrics(reg: client.Registry): void {
  const scratch = new client.Registry();
  client.collectDefaultMetrics({ register: scratch });
  for (const m of scratch.getMetricsAsArray()) {
    const { name, type } = m as unknown as { name: string; type: string };
    if (name.endsWith("_total") && type !== "counter") continue;
    reg.registerMetric(m as unknown as client.Metric);
  }
}

/** The /metrics endpoint's renderer: scrape() reads the source once and renders the chosen format. */
export class MetricsExporter {
  readonly #source: ObserveSource;
  readonly #text: client.Registry;
  readonly #open: client.Registry;
  readonly #counts = new EventCounts();
  readonly #unsubscribe: (() => void) | undefined;
  #state: ObservedState | undefined;
  /** Scrapes run one after another, so each renders the read it made. */
  #queue: Promise<unknown> = Promise.resolve();

  constructor(source: ObserveSource, opts: MetricsOptions = {}) {
    this.#source = source;
    this.#text = new client.Registry();
    // prom-client's typings lack the constructor's content type; setContentType is the typed way.
    const open = new client.Registry() as unknown as client.Registry<client.RegistryContentType>;
    open.setContentType(client.Registry.OPENMETRICS_CONTENT_TYPE);
    this.#open = open as unknown as client.Registry;
    const read: Read = () => {
      if (!this.#state) throw new Error("Metrics collected outside a scrape");
      return this.#state;
    };
    const version = opts.version ?? "0";
    defineMetrics(this.#text, read, this.#counts, version);
    defineMetrics(this.#open, read, this.#counts, version);
    if (opts.processMetrics !== false) {
      addProcessMetrics(this.#text);
      addProcessMetrics(this.#open);
    }
    this.#unsubscribe = opts.subscribe?.((e) => this.#counts.add(e));
  }

  /** Render one scrape; `openMetrics` picks the OpenMetrics text format. */
  scrape(openMetrics = false): Promise<{ contentType: string; body: string }> {
    const run = this.#queue.then(async () => {
      this.#state = await this.#source.read();
      try {
        const reg = openMetrics ? this.#open : this.#text;
        return { contentType: reg.contentType, body: await reg.metrics() };
      } finally {
        this.#state = undefined;
      }
    });
    this.#queue = run.catch(() => {});
    return run;
  }

  close(): void {
    this.#unsubscribe?.();
  }
}

/**
 * Does an Accept header ask for OpenMetrics? Prometheus sends
 * "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,
 * text/plain;version=0.0.4;q=0.5,*\/*;q=0.1" when it prefers it; the highest q wins, ties to text.
 */
export function wantsOpenMetrics(accept: string | undefined): boolean {
  if (!accept) return false;
  let om = -1;
  let text = -1;
  for (const part of accept.split(",")) {
    const [type = "", ...params] = part.split(";").map((x) => x.trim().toLowerCase());
    const qp = params.find((p) => p.startsWith("q="));
    const q = qp ? Number(qp.slice(2)) : 1;
    if (!Number.isFinite(q)) continue;
    if (type === "application/openmetrics-text") om = Math.max(om, q);
    else if (type === "text/plain" || type === "*/*" || type === "text/*") text = Math.max(text, q);
  }
  return om > 0 && om > text;
}
