// `tvs lab persistence` (seed 003's persistent DR service): `-s wlc -p 600`; other client
// addresses, one request each, spread over the real servers (wlc sends each new client to the
// least loaded one); then one client's 20 requests all land on one real server (its template
// holds, whatever the load); `-L -n --persistent-conn` counts the templates per real server and `-L -n -c`
// lists them (NONE, client:0 → VIP:80 → RS); deleting that client's real server with `-d` moves
// the client to another, as the seed shows (the template of a removed real server is void).

import { ipIn } from "../exec.ts";
import { Experiment } from "../experiment.ts";
import type { LabContext, LabExperiment, LabOutcome, LabValues } from "../lab-experiment.ts";
import { positiveInt, str } from "../option-values.ts";
import { HTTP_PORT } from "../topology.ts";

export const persistence: LabExperiment = {
  options: {
    requests: { type: "string", default: "20", help: "requests from the first client" },
    clients: { type: "string", default: "8", help: "other client addresses, one request each" },
    timeout: { type: "string", default: "600", help: "persistence timeout (-p) in seconds" },
  },
  run,
};

/** A template line of `-L -n -c`: "TCP  09:59  NONE  CLIENT:0  VIP:80  RS:80". */
function templateOf(connList: string, client: string): string | undefined {
  return connList.split("\n").find((l) => /\bNONE\b/.test(l) && l.includes(`${client}:0`));
}

async function run(values: LabValues, ctx: LabContext): Promise<LabOutcome> {
  const requests = positiveInt(str(values, "requests"), "--requests");
  const clients = positiveInt(str(values, "clients"), "--clients");
  const timeout = positiveInt(str(values, "timeout"), "--timeout");
  if (clients > 100) throw new Error(`--clients "${clients}" must be at most 100`);
  const plan = ctx.addresses;
  const exp = await Experiment.start({ mode: "dr", configure: false, keep: ctx.keep, log: ctx.log, addresses: plan });
  try {
    const svc = `${exp.vip}:${HTTP_PORT}`;
    await exp.tvsadm(["-A", "-t", svc, "-s", "wlc", "-p", String(timeout)]);
    for (const rs of exp.topo.realServers) await exp.tvsadm(["-a", "-t", svc, "-r", `${rs.ip}:${HTTP_PORT}`, "-g"]);
    ctx.log(await exp.tvsadm(["-L", "-n"]));

    // Other client addresses on the client host: each is a new client for the scheduler.
    const others: Record<string, string> = {};
    for (let i = 0; i < clients; i++) {
      const addr = `${plan.prefix}.${100 + i}`;
      await ipIn(exp.topo.client.ns, "addr", "add", `${addr}/24`, "dev", "eth0");
    }
    ctx.log(`# one request from each of ${clients} other client addresses (wlc: each goes to the least loaded)`);
    for (let i = 0; i < clients; i++) {
      const addr = `${plan.prefix}.${100 + i}`;
      others[addr] = await exp.requestFrom(addr);
      ctx.log(`${addr}: ${others[addr] || "(failed)"}`);
    }
    const spread: Record<string, number> = {};
    for (const who of Object.values(others)) spread[who || "(failed)"] = (spread[who || "(failed)"] ?? 0) + 1;
    const spreadOk =
      Object.keys(spread).filter((k) => k !== "(failed)").length === Math.min(clients, exp.topo.realServers.length);

    ctx.log(`# ${requests} requests from ${plan.client}`);
    const sequence: string[] = [];
    for (let i = 1; i <= requests; i++) sequence.push(await exp.request());
    ctx.log(sequence.map((who, i) => `${i + 1}: ${who || "(failed)"}`).join("\n"));
    const sticky = sequence[0] ?? "";
    const allOnOne = sticky !== "" && sequence.every((s) => s === sticky);
    ctx.log(`# all ${requests} on one real server: ${allOnOne ? `yes (${sticky})` : "no"}`);

    const persistentConn = await exp.tvsadm(["-L", "-n", "--persistent-conn"]);
    ctx.log(persistentConn);
    const connList = await exp.tvsadm(["-L", "-n", "-c"]);
    ctx.log(connList);
    const template = templateOf(connList, plan.client);
    const stickyRs = exp.topo.realServers.find((r) => r.name === sticky);
    const templateOk = template !== undefined && stickyRs !== undefined && template.includes(`${stickyRs.ip}:`);
    ctx.log(`# ${plan.client}'s template: ${template?.trim() ?? "(none)"}`);

    let afterRemoval = "";
    if (stickyRs) {
      await exp.tvsadm(["-d", "-t", svc, "-r", `${stickyRs.ip}:${HTTP_PORT}`]);
      ctx.log(await exp.tvsadm(["-L", "-n"]));
      afterRemoval = await exp.request();
      ctx.log(`# ${plan.client} after -d ${stickyRs.ip}: ${afterRemoval || "(failed)"}`);
    }
    const moved = afterRemoval !== "" && afterRemoval !== sticky;
    const ok = allOnOne && spreadOk && templateOk && moved;
    ctx.log(
      `\n# persistence: ${allOnOne ? "held" : "BROKEN"}; other clients spread: ${spreadOk ? "yes" : "no"}; template listed: ${templateOk ? "yes" : "no"}; client moved after -d: ${moved ? "yes" : "no"}`,
    );
    return {
      ok,
      summary: {
        experiment: "persistence",
        scheduler: "wlc",
        persistence: timeout,
        client: plan.client,
        sequence,
        stickyServer: sticky,
        allOnOne,
        otherClients: others,
        spread,
        spreadOk,
        persistentConn,
        connList,
        template: template?.trim() ?? null,
        templateOk,
        removed: stickyRs?.ip ?? null,
        afterRemoval,
        moved,
        namespaces: exp.topo.lab.hosts().map((h) => h.ns),
      },
    };
  } finally {
    await exp.stop(ctx.keep);
  }
}
