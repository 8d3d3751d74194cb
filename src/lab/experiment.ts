// One LVS experiment, end to end, as the seeds run it by hand: build the topology, start the real
// servers and tvsd (packet data plane) in the director, configure the virtual service with the
// same tvsadm commands an operator types, run the client's curl loop, and report who answered,
// the director's statistics, and whether replies bypassed the director (DR/TUN) — judged both by
// tvsd's own OutPkts and by a capture on the director's interface.

import type { ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type AddressPlan, SEED001_ADDRESSES } from "./addresses.ts";
import { run, runIn, sleep, spawnIn } from "./exec.ts";
import { startNameServer, UDP_CLIENT_JS } from "./servers.ts";
import {
  buildTopology,
  HTTP_PORT,
  type LabMode,
  MAPPED_PORT,
  REPO_ROOT,
  type RealServer,
  releaseRealServers,
  type Topology,
  UDP_PORT,
} from "./topology.ts";

export interface ExperimentOptions {
  mode: LabMode;
  realServers: number;
  scheduler: string;
  /** One weight per real server (default all 1). */
  weights: number[];
  requests: number;
  keep: boolean;
  /** tvsd's packet worker threads (default 1). */
  workers?: number;
  /** Where progress lines go (the commands, as the seeds print them); silent when undefined. */
  log?: (line: string) => void;
  /** The seed's address plan (default seed 001's). */
  addresses?: AddressPlan;
  /** Leave the real servers unprepared (no route back, no VIP on lo): the pitfalls experiment. */
  unprepared?: boolean;
  /** Skip the tvsadm commands that configure the services (the experiment configures tvsd itself). */
  configure?: boolean;
  /** More tvsd arguments (e.g. --config FILE). */
  tvsdArgs?: string[];
  /**
   * Check from the director that every real server answers before returning (default true). The
   * check makes the real servers ARP for the director, which teaches tvsd their MACs.
   */
  awaitServers?: boolean;
}

/** What a test names; the rest defaults to the seeds' setup (two real servers, rr, weights 1, torn down). */
export type ExperimentSetup = Pick<ExperimentOptions, "mode"> & Partial<ExperimentOptions>;

const EXPERIMENT_DEFAULTS: Omit<ExperimentOptions, "mode"> = {
  realServers: 2,
  scheduler: "rr",
  weights: [],
  requests: 0,
  keep: false,
};

export interface ExperimentSummary {
  mode: LabMode;
  scheduler: string;
  /** tvsd's packet worker threads. */
  workers: number;
  requests: number;
  /** Responder name per request, in order ("" for a failed request). */
  sequence: string[];
  counts: Record<string, number>;
  failures: number;
  /** True when no reply crossed the director (expected for DR and TUN), per tvsd's counters and a capture. */
  repliesBypassedDirector: boolean;
  directorOutPackets: number;
  capturedReplyPackets: number;
  stats: string;
  namespaces: string[];
}

const TVSD = join(REPO_ROOT, "bin", "tvsd.js");
const TVSADM = join(REPO_ROOT, "bin", "tvsadm.js");
const TVS = join(REPO_ROOT, "bin", "tvs.js");

export const FORWARD_FLAG: Record<LabMode, string> = { nat: "-m", dr: "-g", tun: "-i", fullnat: "--fullnat" };

/** A running experiment's handles, so tests can drive more traffic before teardown. */
export class Experiment {
  readonly topo: Topology;
  readonly socket: string;
  readonly #children: ChildProcess[] = [];
  /** Each real server's web server, by real server name (stopServer/startServer). */
  readonly #servers = new Map<string, ChildProcess>();
  #keep = false;
  #tvsd: ChildProcess | undefined;
  readonly #log: (line: string) => void;

  private constructor(topo: Topology, socket: string, log: (line: string) => void) {
    this.topo = topo;
    this.socket = socket;
    this.#log = log;
  }

  /** Build the topology, start real servers and tvsd, and configure the service. */
  static async start(setup: ExperimentSetup): Promise<Experiment> {
    const opts: ExperimentOptions = { ...EXPERIMENT_DEFAULTS, ...setup };
    const log = opts.log ?? (() => undefined);
    const plan = opts.addresses ?? SEED001_ADDRESSES;
    log(
      `# building the ${opts.mode.toUpperCase()} topology: client ${plan.client}, director ${plan.director}, VIP ${plan.vip}, ${opts.realServers} real servers`,
    );
    const topo = await buildTopology(opts.mode, opts.realServers, undefined, {
      plan,
      ...(opts.unprepared ? { unprepared: true } : {}),
    });
    const socket = join(tmpdir(), `${topo.lab.prefix}-tvs.sock`);
    const exp = new Experiment(topo, socket, log);
    exp.#keep = opts.keep;
    try {
      for (const rs of topo.realServers) exp.startServer(rs, true);
      await exp.#startTvsd(opts.mode, opts.keep, opts.workers ?? 1, opts.tvsdArgs ?? []);
      if (opts.configure !== false) await exp.configure(opts);
      if (opts.awaitServers !== false) await exp.#waitForServers();
    } catch (e) {
      await exp.stop();
      throw e;
    }
    return exp;
  }

  /** The seed's VIP in this topology. */
  get vip(): string {
    return this.topo.plan.vip;
  }

  /** Start (or restart) a real server's web server: `systemctl start nginx` in the seeds. */
  startServer(rs: RealServer, quiet = false): void {
    if (this.#servers.get(rs.name)?.exitCode === null) return;
    if (!quiet) this.#log(`# ${rs.name} (${rs.ip}): web server started`);
    const log = this.#keep ? this.socket.replace(/\.sock$/, `-${rs.name}.log`) : undefined;
    const child = startNameServer(rs.host.ns, rs.name, [HTTP_PORT, MAPPED_PORT], UDP_PORT, log);
    this.#servers.set(rs.name, child);
    this.#children.push(child);
  }

  /** Stop a real server's web server (`systemctl stop nginx`); resolves when it has exited. */
  async stopServer(rs: RealServer): Promise<void> {
    const child = this.#servers.get(rs.name);
    if (!child || child.exitCode !== null || child.pid === undefined) return;
    this.#log(`# ${rs.name} (${rs.ip}): web server stopped`);
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGTERM");
    await exited;
  }

  /** tvsd's process (for CPU time: its PID inside the director's namespace is `ip netns exec`'s child). */
  get tvsdProcess(): ChildProcess | undefined {
    return this.#tvsd;
  }

  async #startTvsd(mode: LabMode, keep: boolean, workers: number, extra: string[]): Promise<void> {
    const args = [TVSD, "--dataplane", "packet", "--interface", "eth0", "--socket", this.socket, ...extra];
    if (workers > 1) args.push("--workers", String(workers));
    if (mode === "fullnat") args.push("--local-addrs", this.topo.plan.fullnatLocal);
    this.#log(`# director: tvsd ${args.slice(1).join(" ")}`);
    // With --keep, tvsd must outlive this command: detached, logging to a file beside its socket.
    const logFile = keep ? this.socket.replace(/\.sock$/, ".log") : undefined;
    if (logFile) this.#log(`# tvsd log: ${logFile} (socket ${this.socket})`);
    const child = spawnIn(this.topo.director.ns, process.execPath, args, process.env, logFile);
    let stderr = "";
    child.stderr?.on("data", (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-4000);
    });
    child.stdout?.resume();
    this.#children.push(child);
    this.#tvsd = child;
    const deadline = Date.now() + 20_000;
    while (!existsSync(this.socket)) {
      if (child.exitCode !== null) throw new Error(`tvsd exited with ${child.exitCode}: ${stderr.trim()}`);
      if (Date.now() > deadline) throw new Error(`tvsd did not open ${this.socket} within 20 s: ${stderr.trim()}`);
      await sleep(100);
    }
  }

  /** Run tvsadm against this experiment's tvsd; returns stdout. */
  async tvsadm(args: string[], quiet = false): Promise<string> {
    if (!quiet) this.#log(`tvsadm ${args.join(" ")}`);
    const r = await run(process.execPath, [TVSADM, ...args], { env: { ...process.env, TVS_SOCKET: this.socket } });
    return r.stdout;
  }

  /**
   * The destinations in tvsd's table ("ADDR:PORT" per service, in list order), read straight from
   * the control socket (GET /v1/snapshot): cheap enough to poll every few milliseconds when timing
   * a health check, where starting tvsadm each time would blur the figure.
   */
  destinations(): Promise<string[]> {
    return new Promise((resolve, reject) => {
      const req = httpRequest({ socketPath: this.socket, path: "/v1/snapshot", method: "GET" }, (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => {
          body += d;
        });
        res.on("end", () => {
          try {
            const snap = JSON.parse(body) as { services: { dests: { spec: { addr: string; port: number } }[] }[] };
            resolve(snap.services.flatMap((s) => s.dests.map((d) => `${d.spec.addr}:${d.spec.port}`)));
          } catch (e) {
            reject(new Error(`tvsd's snapshot did not parse (HTTP ${res.statusCode}): ${(e as Error).message}`));
          }
        });
      });
      req.setTimeout(5000, () => req.destroy(new Error("tvsd's snapshot took over 5 s")));
      req.on("error", reject);
      req.end();
    });
  }

  /** Run `tvs` (e.g. `status`) against this experiment's tvsd; returns stdout. */
  async tvs(args: string[]): Promise<string> {
    const r = await run(process.execPath, [TVS, ...args], { env: { ...process.env, TVS_SOCKET: this.socket } });
    return r.stdout;
  }

  async configure(opts: ExperimentOptions): Promise<void> {
    const VIP = this.vip;
    const svc = `${VIP}:${HTTP_PORT}`;
    await this.tvsadm(["-A", "-t", svc, "-s", opts.scheduler]);
    await this.tvsadm(["-A", "-u", `${VIP}:${UDP_PORT}`, "-s", opts.scheduler]);
    for (const [i, rs] of this.topo.realServers.entries()) {
      const w = String(opts.weights[i] ?? 1);
      const fwd = FORWARD_FLAG[opts.mode];
      await this.tvsadm(["-a", "-t", svc, "-r", `${rs.ip}:${HTTP_PORT}`, fwd, "-w", w]);
      await this.tvsadm(["-a", "-u", `${VIP}:${UDP_PORT}`, "-r", `${rs.ip}:${UDP_PORT}`, fwd, "-w", w], true);
    }
  }

  async #waitForServers(): Promise<void> {
    for (const rs of this.topo.realServers) {
      const deadline = Date.now() + 15_000;
      for (;;) {
        const ok = await runIn(this.topo.director.ns, "curl", ["-s", "-m", "1", `http://${rs.ip}:${HTTP_PORT}/`]).then(
          (r) => r.stdout.trim() === rs.name,
          () => false,
        );
        if (ok) break;
        if (Date.now() > deadline) throw new Error(`Real server ${rs.name} (${rs.ip}) did not answer within 15 s`);
        await sleep(200);
      }
    }
  }

  /** One HTTP request from the client to the VIP; the responder's name or "" on failure. */
  async request(path = "/", port = HTTP_PORT, host = this.vip, timeoutS = 3): Promise<string> {
    return runIn(this.topo.client.ns, "curl", ["-s", "-m", String(timeoutS), `http://${host}:${port}${path}`]).then(
      (r) => r.stdout.trim(),
      () => "",
    );
  }

  /** One HTTP request to the VIP from another of the client's addresses (curl --interface). */
  async requestFrom(source: string, path = "/"): Promise<string> {
    const url = `http://${this.vip}:${HTTP_PORT}${path}`;
    return runIn(this.topo.client.ns, "curl", ["-s", "-m", "3", "--interface", source, url]).then(
      (r) => r.stdout.trim(),
      () => "",
    );
  }

  /**
   * One UDP exchange from the client to VIP:port; the reply text or "" on timeout. With `size`,
   * a datagram of that many bytes is echoed back: "rs1 echo-ok" when it returned intact.
   */
  async udpRequest(port = UDP_PORT, size?: number): Promise<string> {
    const args = ["-e", UDP_CLIENT_JS, this.vip, String(port), ...(size !== undefined ? [String(size)] : [])];
    return runIn(this.topo.client.ns, process.execPath, args).then(
      (r) => r.stdout.trim(),
      () => "",
    );
  }

  /** Fetch a path from the client as raw bytes (for transfer tests), via curl to a file-less pipe. */
  async fetchBytes(path: string, port = HTTP_PORT): Promise<Buffer> {
    const r = await run(
      "ip",
      ["netns", "exec", this.topo.client.ns, "curl", "-s", "-m", "60", `http://${this.vip}:${port}${path}`],
      {
        timeoutMs: 90_000,
        encoding: "buffer",
      },
    );
    return r.stdoutBytes ?? Buffer.alloc(0);
  }

  /** The client's curl loop ("1: rs1", "2: rs2", ...), with a capture on the director's interface. */
  async curlLoop(requests: number): Promise<{ sequence: string[]; captured: number }> {
    const capture = spawnIn(this.topo.director.ns, "tcpdump", [
      "-i",
      "eth0",
      "-nn",
      "-q",
      "-l",
      "-p",
      `tcp and src port ${HTTP_PORT} and (dst host ${this.topo.plan.client} or dst host ${this.topo.plan.fullnatLocal}) and not src host ${this.vip}`,
    ]);
    let lines = 0;
    capture.stdout?.on("data", (d: Buffer) => {
      lines += d
        .toString()
        .split("\n")
        .filter((l) => l.trim() !== "").length;
    });
    let captureErr = "";
    capture.stderr?.on("data", (d: Buffer) => {
      captureErr = (captureErr + d.toString()).slice(-2000);
    });
    await sleep(500);
    if (capture.exitCode !== null)
      throw new Error(`tcpdump did not start in the director (install tcpdump): ${captureErr.trim()}`);
    const sequence: string[] = [];
    for (let i = 1; i <= requests; i++) {
      const who = await this.request();
      sequence.push(who);
      this.#log(`${i}: ${who || "(failed)"}`);
    }
    await sleep(300);
    if (capture.exitCode === null) {
      const exited = new Promise((r) => capture.once("exit", r));
      capture.kill("SIGTERM");
      await exited;
    }
    return { sequence, captured: lines };
  }

  async stop(keep = false): Promise<void> {
    if (keep) return;
    for (const c of this.#children) if (c.exitCode === null && c.pid !== undefined) c.kill("SIGTERM");
    await Promise.all(
      this.#children.map((c) => (c.exitCode === null ? new Promise((r) => c.once("exit", r)) : undefined)),
    );
    await releaseRealServers(this.topo);
    await this.topo.lab.destroy();
  }
}

/** The whole experiment: configure, curl loop, distribution, stats, teardown (unless keep). */
export async function runExperiment(opts: ExperimentOptions): Promise<ExperimentSummary> {
  const exp = await Experiment.start(opts);
  try {
    const { sequence, captured } = await exp.curlLoop(opts.requests);
    const counts: Record<string, number> = {};
    for (const rs of exp.topo.realServers) counts[rs.name] = 0;
    let failures = 0;
    for (const who of sequence) {
      if (who === "") failures++;
      else counts[who] = (counts[who] ?? 0) + 1;
    }
    const stats = await exp.tvsadm(["-L", "-n", "--stats"]);
    const snap = JSON.parse(await exp.tvsadm(["-L", "-n", "--stats", "--json"], true)) as {
      services: { key: { port?: number }; stats: { outPkts: number } }[];
    };
    const http = snap.services.find((s) => s.key.port === HTTP_PORT);
    const outPkts = http?.stats.outPkts ?? -1;
    return {
      mode: opts.mode,
      scheduler: opts.scheduler,
      workers: opts.workers ?? 1,
      requests: opts.requests,
      sequence,
      counts,
      failures,
      repliesBypassedDirector: outPkts === 0 && captured === 0,
      directorOutPackets: outPkts,
      capturedReplyPackets: captured,
      stats,
      namespaces: exp.topo.lab.hosts().map((h) => h.ns),
    };
  } finally {
    await exp.stop(opts.keep);
  }
}
