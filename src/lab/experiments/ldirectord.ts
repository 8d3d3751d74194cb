// `tvs lab ldirectord` (seed 003's ldirectord.cf on a DR director): tvsd reads the seed's file
// (quiescent=no, checktype=negotiate on port 80, fallback=127.0.0.1:80 gate, rr, persistent 600)
// with the lab's addresses. The lab stops one real server's web server and measures how long it
// takes to leave `tvsadm -L -n` (bound: checkinterval × (failurecount − 1 + 1), ldirectord's
// retries being failurecount − 1, plus one check's own time); starts it again and measures its
// return; stops every one and shows the fallback come in. It prints the table at each step, as
// the seed does, and which server answers the client (the fallback is a web server on the
// director, answering for the VIP as the seed's local httpd does).

import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { realServerAddress } from "../addresses.ts";
import { ipIn, runIn, sleep } from "../exec.ts";
import { Experiment } from "../experiment.ts";
import type { LabContext, LabExperiment, LabOutcome, LabValues } from "../lab-experiment.ts";
import { LabOptionError, positiveInt, str } from "../option-values.ts";
import { startNameServer } from "../servers.ts";
import { HTTP_PORT, prepareRealServer, type RealServer, TVS_BIN, UDP_PORT } from "../topology.ts";

export const ldirectord: LabExperiment = {
  options: {
    checkinterval: { type: "string", default: "1", help: "ldirectord's checkinterval in seconds" },
    checktimeout: { type: "string", default: "3", help: "ldirectord's checktimeout in seconds" },
    "fallback-host": {
      type: "string",
      help: "put the fallback on a host of its own at this address (default: the seed's 127.0.0.1, on the director)",
    },
  },
  run,
};

/** The seed's ldirectord.cf with this lab's addresses. */
export function seedLdirectordCf(
  vip: string,
  reals: readonly string[],
  interval: number,
  timeout: number,
  fallback = "127.0.0.1",
): string {
  return `# ldirectord.cf of seed 003, with the lab's addresses
checktimeout=${timeout}
checkinterval=${interval}
autoreload=yes
logfile="/var/log/ldirectord.log"
quiescent=no

virtual=${vip}:80
${reals.map((r) => `        real=${r}:80 gate`).join("\n")}
        fallback=${fallback}:80 gate
        service=http
        scheduler=rr
        persistent=600
        #netmask=255.255.255.255
        protocol=tcp
        checktype=negotiate
        checkport=80
        #request="index.html"
        #receive="Test Page"
        #virtualhost=www.x.y.z
`;
}

interface Step {
  step: string;
  table: string;
  /** Milliseconds from the action to the table showing its effect (undefined: it never did). */
  ms?: number;
  /** Who answered the client afterwards ("" = no answer). */
  answer: string;
}

async function run(values: LabValues, ctx: LabContext): Promise<LabOutcome> {
  const interval = positiveInt(str(values, "checkinterval"), "--checkinterval");
  const timeout = positiveInt(str(values, "checktimeout"), "--checktimeout");
  const plan = ctx.addresses;
  const dir = mkdtempSync(join(tmpdir(), "tvs-lab-ldirectord-"));
  const cf = join(dir, "ldirectord.cf");
  const reals = [0, 1].map((i) => realServerAddress(plan, i));
  const fallbackHost = values["fallback-host"];
  const fallback = typeof fallbackHost === "string" ? fallbackHost : "127.0.0.1";
  if (fallback !== "127.0.0.1") {
    if (!/^\d+\.\d+\.\d+\.\d+$/.test(fallback) || !fallback.startsWith(`${plan.prefix}.`))
      throw new LabOptionError(`--fallback-host "${fallback}" must be an IPv4 address in ${plan.prefix}.0/24`);
    const taken = [plan.client, plan.director, plan.vip, plan.fullnatLocal, ...reals];
    if (taken.includes(fallback)) throw new LabOptionError(`--fallback-host "${fallback}" is already used in the lab`);
  }
  const config = seedLdirectordCf(plan.vip, reals, interval, timeout, fallback);
  writeFileSync(cf, config);
  ctx.log(`# ${cf}\n${config}`);
  const exp = await Experiment.start({
    mode: "dr",
    configure: false,
    keep: ctx.keep,
    log: ctx.log,
    addresses: plan,
    tvsdArgs: ["--config", cf],
  });
  // The fallback: the director's own web server on port 80 (the seed's local httpd), or a host of
  // its own prepared as a DR real server.
  let fallbackServer: ChildProcess;
  let fallbackNs: string | undefined;
  try {
    if (fallback === "127.0.0.1") {
      fallbackServer = startNameServer(exp.topo.director.ns, "fallback", [HTTP_PORT], UDP_PORT);
    } else {
      const host = await exp.topo.lab.addHost("fallback");
      fallbackNs = host.ns;
      await ipIn(host.ns, "addr", "add", `${fallback}/24`, "dev", "eth0");
      await prepareRealServer(exp.topo, { name: "fallback", host, ip: fallback });
      fallbackServer = startNameServer(host.ns, "fallback", [HTTP_PORT], UDP_PORT);
    }
  } catch (e) {
    await exp.stop(ctx.keep);
    throw e;
  }
  const steps: Step[] = [];
  // ldirectord removes a real server after failurecount (default 1) failed checks: retries 0.
  const retries = 0;
  const boundMs = interval * 1000 * (retries + 1);
  try {
    const has = (dests: string[], addr: string) => dests.includes(`${addr}:80`);
    // Milliseconds until the table satisfies `what` (polled on the control socket every 10 ms).
    const waitUntil = async (what: (dests: string[]) => boolean, limitMs: number) => {
      const t0 = performance.now();
      while (performance.now() - t0 < limitMs) {
        if (what(await exp.destinations())) return Math.round(performance.now() - t0);
        await sleep(10);
      }
      return undefined;
    };
    const record = async (step: string, ms: number | undefined) => {
      const table = await exp.tvsadm(["-L", "-n"]);
      ctx.log(table.replace(/\n$/, ""));
      const answer = await exp.request();
      ctx.log(`# curl ${plan.vip}: ${answer || "(no answer)"}\n`);
      steps.push({ step, table, ...(ms !== undefined ? { ms } : {}), answer });
    };
    const [rs1, rs2] = exp.topo.realServers as [RealServer, RealServer];
    // Both checked up first (the service starts with both real servers, checks confirm them).
    const t0 = await waitUntil((l) => has(l, rs1.ip) && has(l, rs2.ip), 10_000);
    await sleep(interval * 1000 + 200);
    await record("start", t0);

    await exp.stopServer(rs1);
    const out = await waitUntil((l) => !has(l, rs1.ip), boundMs * 5 + timeout * 1000);
    ctx.log(
      `# ${rs1.ip} left the table after ${out ?? "(never)"} ms (checkinterval ${interval} s × (retries ${retries} + 1) = ${boundMs} ms)`,
    );
    await record(`stop ${rs1.name}`, out);

    exp.startServer(rs1);
    const back = await waitUntil((l) => has(l, rs1.ip), boundMs * 5 + timeout * 1000);
    ctx.log(`# ${rs1.ip} returned after ${back ?? "(never)"} ms (one good check)`);
    await record(`start ${rs1.name}`, back);

    await exp.stopServer(rs1);
    await exp.stopServer(rs2);
    const fb = await waitUntil(
      (l) => has(l, fallback) && !has(l, rs1.ip) && !has(l, rs2.ip),
      boundMs * 5 + timeout * 1000,
    );
    ctx.log(`# fallback ${fallback}:80 in after ${fb ?? "(never)"} ms`);
    await record("stop all", fb);
    // tvsd says so itself when the fallback is the director (its packet plane has no local delivery).
    const tvsNote = (await exp.tvs(["status"])).split("\n").find((l) => l.includes("is this director itself"));
    if (tvsNote) ctx.log(`# tvs status: ${tvsNote.trim()}`);
    if (fallback === "127.0.0.1")
      ctx.log(
        "# (the kernel's IPVS hands such packets to the director's own stack, where the seed's local httpd answers;\n#  --fallback-host ADDR puts the fallback on a host of its own)\n",
      );

    exp.startServer(rs2);
    const restored = await waitUntil((l) => has(l, rs2.ip) && !has(l, fallback), boundMs * 5 + timeout * 1000);
    ctx.log(`# ${rs2.ip} back, fallback out after ${restored ?? "(never)"} ms`);
    await record(`start ${rs2.name}`, restored);

    const [, stop1, start1, stopAll, start2] = steps;
    const removedInBound = stop1?.ms !== undefined && stop1.ms <= boundMs + timeout * 1000;
    const ok =
      removedInBound &&
      start1?.ms !== undefined &&
      stopAll?.ms !== undefined &&
      start2?.ms !== undefined &&
      stop1?.answer === rs2.name &&
      (fallback === "127.0.0.1" ? tvsNote !== undefined : stopAll.answer === "fallback");
    ctx.log(
      `# removed within the bound: ${removedInBound ? "yes" : "no"}; returned: ${start1?.ms !== undefined ? "yes" : "no"}; fallback in when all were down: ${stopAll?.ms !== undefined ? "yes" : "no"} (answered by ${stopAll?.answer || "nobody"})`,
    );
    return {
      ok,
      summary: {
        experiment: "ldirectord",
        config,
        fallback,
        tvsNote: tvsNote?.trim() ?? null,
        checkintervalMs: interval * 1000,
        retries,
        boundMs,
        removedMs: stop1?.ms ?? null,
        removedWithinBound: removedInBound,
        returnedMs: start1?.ms ?? null,
        fallbackMs: stopAll?.ms ?? null,
        fallbackOutMs: start2?.ms ?? null,
        steps,
        namespaces: exp.topo.lab.hosts().map((h) => h.ns),
      },
    };
  } finally {
    if (!ctx.keep) {
      if (fallbackServer.exitCode === null) fallbackServer.kill("SIGTERM");
      if (fallbackNs)
        await runIn(fallbackNs, process.execPath, [TVS_BIN, "realserver", "stop", "--vip", plan.vip]).catch(
          () => undefined,
        );
    }
    await exp.stop(ctx.keep);
    rmSync(dir, { recursive: true, force: true });
  }
}
