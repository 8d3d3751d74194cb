import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { test } from "node:test";
import { EventBus } from "./events.ts";
import { MetricsExporter, wantsOpenMetrics } from "./metrics.ts";
import { destView, mutableSource, serviceView, snapshotOf, stateOf } from "./test-state.ts";

function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got: Record<string, string> = {};
    for (const lm of (m[3] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) got[lm[1] as string] = lm[2] as string;
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(m[4]);
  }
  return undefined;
}

const web = serviceView({ kind: "vip", protocol: "tcp", addr: "10.0.0.1", port: 80 }, [
  destView("192.168.0.2", 8080, { conns: 7, activeConns: 2, inactConns: 1 }),
  destView("192.168.0.3", 8080, {
    conns: 5,
    activeConns: 1,
    spec: { ...destView("x", 0).spec, addr: "192.168.0.3", port: 8080, weight: 3 },
  }),
]);
const marked = serviceView({ kind: "fwmark", fwmark: 10, family: 4 }, [destView("192.168.0.9", 0, { conns: 1 })]);

test("node_exporter's ipvs names and labels, fwmark services as /proc/net/ip_vs shows them", async () => {
  const src = mutableSource(stateOf(snapshotOf([web, marked])));
  const m = new MetricsExporter(src, { processMetrics: false });
  const { body, contentType } = await m.scrape();
  assert.match(contentType, /^text\/plain; version=0.0.4/);
  assert.equal(sample(body, "node_ipvs_connections_total"), 13);
  assert.equal(sample(body, "node_ipvs_incoming_bytes_total"), 13000);
  const b = { local_address: "10.0.0.1", local_port: "80", proto: "TCP", local_mark: "" };
  assert.equal(
    sample(body, "node_ipvs_backend_connections_active", { ...b, remote_address: "192.168.0.2", remote_port: "8080" }),
    2,
  );
  assert.equal(sample(body, "node_ipvs_backend_connections_inactive", { ...b, remote_address: "192.168.0.2" }), 1);
  assert.equal(sample(body, "node_ipvs_backend_weight", { ...b, remote_address: "192.168.0.3" }), 3);
  assert.equal(
    sample(body, "node_ipvs_backend_weight", { proto: "FWM", local_mark: "0000000A", remote_address: "192.168.0.9" }),
    1,
  );
  assert.equal(sample(body, "tvs_backend_connections_total", { ...b, remote_address: "192.168.0.3" }), 5);
  assert.equal(sample(body, "tvs_service_connections_total", b), 12);
  assert.equal(sample(body, "tvs_connection_table_entries"), 3);
  assert.equal(src.reads, 1, "one read of the daemon per scrape");
});

test("series of a removed service are gone on the next scrape", async () => {
  const src = mutableSource(stateOf(snapshotOf([web, marked])));
  const m = new MetricsExporter(src, { processMetrics: false });
  await m.scrape();
  src.state = stateOf(snapshotOf([marked]));
  const { body } = await m.scrape();
  assert.equal(sample(body, "node_ipvs_backend_weight", { local_address: "10.0.0.1" }), undefined);
  assert.equal(sample(body, "node_ipvs_backend_weight", { proto: "FWM" }), 1);
});

test("health checks, drops by reason, VRRP and sync under their names", async () => {
  const bus = new EventBus();
  const src = mutableSource(
    stateOf(snapshotOf([web]), {
      checks: [
        {
          service: "tcp 10.0.0.1:80",
          dest: "192.168.0.2:8080",
          checker: "TCP_CHECK",
          state: "up",
          lastResult: "ok",
          reason: "Connected",
          sinceChangeMs: 4000,
          latencyMs: 2.5,
          lastCheckAgoMs: 500,
          checks: 9,
        },
        {
          service: "tcp 10.0.0.1:80",
          dest: "192.168.0.3:8080",
          checker: "HTTP_GET",
          state: "down",
          lastResult: "failed",
          reason: "Refused",
          sinceChangeMs: 1000,
        },
      ],
      runtime: {
        plane: {
          rx: 100,
          rxBytes: 6400,
          tx: 90,
          txErrors: 1,
          forwarded: 80,
          replied: 5,
          consumed: 3,
          ignored: 2,
          dropped: 10,
          drops: { noService: 7, tableFull: 3 },
          synCookies: { sent: 500, valid: 20, invalid: 6 },
          socketDrops: 42,
          reassembly: {
            fragmentsIn: 30,
            reassembled: 10,
            handoffs: 4,
            timeouts: 2,
            evicted: 1,
            fragmentsOut: 29,
            memory: 4096,
          },
        },
        workers: 4,
        connRefused: 3,
      },
      vrrp: [
        {
          name: "VI_1",
          interface: "eth0",
          vrid: 51,
          state: "MASTER",
          priority: 150,
          addresses: ["10.0.0.1", "10.0.0.2"],
          advertisementsReceived: 4,
          advertisementsSent: 120,
          becameMaster: 1,
          releasedMaster: 0,
        },
      ],
      sync: [
        {
          role: "master",
          syncId: 7,
          interface: "eth1",
          state: "running",
          messagesSent: 12,
          messagesReceived: 0,
          connectionsSent: 40,
          connectionsReceived: 0,
          errors: { length: 2 },
        },
      ],
    }),
  );
  const m = new MetricsExporter(src, { processMetrics: false, subscribe: (l) => bus.subscribe(l) });
  bus.publish({ type: "dest-down", message: "down", service: "tcp 10.0.0.1:80", dest: "192.168.0.3:8080" });
  bus.publish({ type: "dest-up", message: "up", service: "tcp 10.0.0.1:80", dest: "192.168.0.3:8080" });
  bus.publish({ type: "dest-down", message: "down", service: "tcp 10.0.0.1:80", dest: "192.168.0.3:8080" });
  const { body } = await m.scrape();
  const c = { service: "tcp 10.0.0.1:80", backend: "192.168.0.2:8080", checker: "TCP_CHECK" };
  assert.equal(sample(body, "tvs_healthcheck_up", c), 1);
  assert.equal(sample(body, "tvs_healthcheck_latency_seconds", c), 0.0025);
  assert.equal(sample(body, "tvs_healthcheck_checks_total", c), 9);
  assert.equal(sample(body, "tvs_healthcheck_up", { backend: "192.168.0.3:8080" }), 0);
  assert.equal(sample(body, "tvs_healthcheck_transitions_total", { backend: "192.168.0.3:8080", to: "down" }), 2);
  assert.equal(sample(body, "tvs_healthcheck_transitions_total", { backend: "192.168.0.3:8080", to: "up" }), 1);
  assert.equal(sample(body, "tvs_dataplane_drops_total", { reason: "noService" }), 7);
  assert.equal(sample(body, "tvs_dataplane_frames_total", { verdict: "forward" }), 80);
  assert.equal(sample(body, "tvs_synproxy_cookies_total", { result: "sent" }), 500);
  assert.equal(sample(body, "tvs_synproxy_cookies_total", { result: "invalid" }), 6);
  assert.equal(sample(body, "tvs_dataplane_socket_drops_total"), 42);
  assert.equal(sample(body, "tvs_dataplane_ipv6_reassembly_total", { event: "reassembled" }), 10);
  assert.equal(sample(body, "tvs_dataplane_ipv6_reassembly_total", { event: "timeout" }), 2);
  assert.equal(sample(body, "tvs_dataplane_ipv6_reassembly_total", { event: "handoff" }), 4);
  assert.equal(sample(body, "tvs_dataplane_ipv6_reassembly_bytes"), 4096);
  assert.equal(sample(body, "tvs_dataplane_workers"), 4);
  assert.equal(sample(body, "tvs_connection_table_refused_total"), 3);
  assert.equal(
    sample(body, "keepalived_vrrp_state", { iname: "VI_1", intf: "eth0", vrid: "51", ip_address: "10.0.0.2" }),
    2,
  );
  assert.equal(sample(body, "keepalived_advertisements_sent_total", { iname: "VI_1" }), 120);
  assert.equal(sample(body, "keepalived_become_master_total", { iname: "VI_1" }), 1);
  assert.equal(sample(body, "tvs_sync_connections_sent_total", { role: "master", syncid: "7" }), 40);
  assert.equal(sample(body, "tvs_sync_errors_total", { reason: "length" }), 2);
  assert.equal(sample(body, "tvs_events_total", { type: "dest-down" }), 2);
  m.close();
});

test("OpenMetrics when the scraper prefers it, with its # EOF", async () => {
  const m = new MetricsExporter(mutableSource(stateOf(snapshotOf([web]))), { processMetrics: false });
  const om = await m.scrape(true);
  assert.match(om.contentType, /^application\/openmetrics-text; version=1.0.0/);
  assert.match(om.body, /# TYPE node_ipvs_connections counter\nnode_ipvs_connections_total 12\n/);
  assert.ok(om.body.endsWith("# EOF\n"));
  // The text format afterwards still has the counters' full names.
  assert.match((await m.scrape(false)).body, /# TYPE node_ipvs_connections_total counter/);
  const prometheusAccept =
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
  assert.equal(wantsOpenMetrics(prometheusAccept), true);
  assert.equal(wantsOpenMetrics("text/plain;version=0.0.4;q=1,application/openmetrics-text;q=0.5"), false);
  assert.equal(wantsOpenMetrics(undefined), false);
  assert.equal(wantsOpenMetrics("*/*"), false);
});

test(
  "promtool check metrics accepts the exposition (process metrics included)",
  { skip: !existsSync("/usr/bin/promtool") && "promtool not installed (Debian prometheus)" },
  async () => {
    const src = mutableSource(
      stateOf(snapshotOf([web, marked]), {
        vrrp: [
          {
            name: "VI_1",
            interface: "eth0",
            vrid: 51,
            state: "BACKUP",
            priority: 100,
            addresses: [],
            advertisementsReceived: 1,
            advertisementsSent: 0,
            becameMaster: 0,
            releasedMaster: 0,
          },
        ],
        runtime: {
          plane: {
            rx: 1,
            rxBytes: 64,
            tx: 1,
            txErrors: 0,
            forwarded: 1,
            replied: 0,
            consumed: 0,
            ignored: 0,
            dropped: 0,
            drops: { noService: 0 },
          },
        },
      }),
    );
    const { body } = await new MetricsExporter(src).scrape();
    const r = spawnSync("promtool", ["check", "metrics"], { input: body, encoding: "utf8" });
    assert.equal(r.status, 0, `promtool: ${r.stdout}${r.stderr}`);
    assert.match(body, /process_cpu_seconds_total/);
  },
);

test("the socket plane's descriptor budget and UDP flow table; nothing of them on a plane without limits", async () => {
  const pressure = {
    fdLimit: 896,
    fdUsed: 40,
    fdReserve: 128,
    fdRefused: 6,
    udpFlows: 146,
    udpFlowLimit: 224,
    udpSockets: 73,
    udpEvicted: 9,
  };
  const m = new MetricsExporter(mutableSource(stateOf(snapshotOf([web]), { runtime: { pressure } })), {
    processMetrics: false,
  });
  const { body } = await m.scrape();
  assert.equal(sample(body, "tvs_dataplane_fds"), 40);
  assert.equal(sample(body, "tvs_dataplane_fd_limit"), 896);
  assert.equal(sample(body, "tvs_dataplane_fd_reserve"), 128);
  assert.equal(sample(body, "tvs_dataplane_fd_refused_total"), 6);
  assert.equal(sample(body, "tvs_udp_flows"), 146);
  assert.equal(sample(body, "tvs_udp_flow_limit"), 224);
  assert.equal(sample(body, "tvs_udp_sockets"), 73);
  assert.equal(sample(body, "tvs_udp_flows_evicted_total"), 9);
  m.close();
  const unbounded = new MetricsExporter(
    mutableSource(
      stateOf(snapshotOf([web]), { runtime: { pressure: { ...pressure, fdLimit: Number.POSITIVE_INFINITY } } }),
    ),
    { processMetrics: false },
  );
  const u = await unbounded.scrape();
  assert.equal(sample(u.body, "tvs_dataplane_fd_limit"), undefined, "an unknown limit is no series");
  assert.equal(sample(u.body, "tvs_dataplane_fds"), 40);
  unbounded.close();
  const none = new MetricsExporter(mutableSource(stateOf(snapshotOf([web]))), { processMetrics: false });
  assert.equal(sample((await none.scrape()).body, "tvs_dataplane_fds"), undefined);
  none.close();
});
