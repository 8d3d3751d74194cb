// tvsd --demo (what `npm start` runs): two tiny HTTP real servers on loopback that answer with
// their own names, and the desired state that puts them behind VIP 127.0.0.1:8080 with rr on the
// socket data plane, so a fresh checkout shows load balancing with nothing installed but Node.

import http from "node:http";
import type { AddressInfo } from "node:net";
import type { DesiredState } from "../config/desired.ts";
import { destSpec } from "../core/dest.ts";
import { serviceOptions } from "../core/service.ts";

export interface DemoConfig {
  vip: string;
  vport: number;
  servers: { name: string; addr: string; port: number }[];
}

export const DEMO: DemoConfig = {
  vip: "127.0.0.1",
  vport: 8080,
  servers: [
    { name: "rs1", addr: "127.0.0.1", port: 8081 },
    { name: "rs2", addr: "127.0.0.1", port: 8082 },
  ],
};

/** The demo's service: VIP:port, rr, the real servers by masquerading, weight 1 each. */
export function demoDesiredState(cfg: DemoConfig = DEMO): DesiredState {
  return {
    services: [
      {
        key: { kind: "vip", protocol: "tcp", addr: cfg.vip, port: cfg.vport },
        options: serviceOptions(4, { scheduler: "rr" }),
        dests: cfg.servers.map((s) => destSpec(s.addr, s.port, { fwd: "masq" })),
      },
    ],
  };
}

export interface DemoServers {
  /** Actual ports (differ from the configured ones when those were 0). */
  ports: number[];
  close(): Promise<void>;
}

/** Start the demo real servers; rejects (naming the address) when one cannot listen. */
export async function startDemoServers(cfg: DemoConfig = DEMO): Promise<DemoServers> {
  const servers: http.Server[] = [];
  const ports: number[] = [];
  const closeAll = () =>
    Promise.all(servers.map((s) => new Promise<void>((r) => (s.listening ? s.close(() => r()) : r())))).then(() => {});
  try {
    for (const s of cfg.servers) {
      const server = http.createServer((req, res) => {
        const body = `Hello from ${s.name} (${s.addr}:${s.port}) ${req.method} ${req.url}\n`;
        res.writeHead(200, {
          "content-type": "text/plain",
          "content-length": Buffer.byteLength(body),
          "x-served-by": s.name,
        });
        res.end(body);
      });
      server.keepAliveTimeout = 5000;
      servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once("error", (err: NodeJS.ErrnoException) =>
          reject(
            new Error(`Cannot start demo real server ${s.name} on ${s.addr}:${s.port}: ${err.code ?? err.message}`),
          ),
        );
        server.listen(s.port, s.addr, () => resolve());
      });
      ports.push((server.address() as AddressInfo).port);
    }
  } catch (err) {
    await closeAll();
    throw err;
  }
  return {
    ports,
    close: () => {
      for (const s of servers) s.closeAllConnections();
      return closeAll();
    },
  };
}

/** What --demo prints after the table: how to try it. */
export function demoHint(cfg: DemoConfig = DEMO): string {
  return [
    "",
    "Try it:",
    `  for i in $(seq 1 6); do curl -s ${cfg.vip}:${cfg.vport}; done`,
    "  npx tvsadm -L -n          # the table (ActiveConn/InActConn), -L -n -c for connections, --stats, --rate",
    "",
  ].join("\n");
}
