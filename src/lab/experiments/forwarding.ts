// `tvs lab nat|dr|tun|fullnat`: one forwarding method as seed 001 runs it (the tvsadm commands,
// the client's curl loop, the distribution, `tvsadm -L -n --stats`, and whether replies bypassed
// the director, by tvsd's OutPkts and a capture on its interface).

import { runExperiment } from "../experiment.ts";
import type { LabContext, LabExperiment, LabOutcome, LabValues } from "../lab-experiment.ts";
import { LabOptionError, nonNegInt, positiveInt, str } from "../option-values.ts";
import type { LabMode } from "../topology.ts";

function forwarding(mode: LabMode): LabExperiment {
  return {
    options: {
      "real-servers": { type: "string", default: "2", help: "how many real servers" },
      scheduler: { type: "string", default: "rr", help: "the service's scheduler" },
      weights: { type: "string", help: "weights in real-server order, e.g. 2,1" },
      requests: { type: "string", default: "10", help: "requests in the client's curl loop" },
      workers: { type: "string", default: "1", help: "tvsd's packet worker threads" },
    },
    run: (values, ctx) => runForwarding(mode, values, ctx),
  };
}

async function runForwarding(mode: LabMode, values: LabValues, ctx: LabContext): Promise<LabOutcome> {
  const realServers = positiveInt(str(values, "real-servers"), "--real-servers");
  const weightsText = values.weights;
  const weights = typeof weightsText === "string" ? weightsText.split(",").map((w) => nonNegInt(w, "--weights")) : [];
  if (weights.length > realServers)
    throw new LabOptionError(`--weights "${weightsText}" has more weights than real servers`);
  const summary = await runExperiment({
    mode,
    realServers,
    scheduler: str(values, "scheduler"),
    weights,
    requests: positiveInt(str(values, "requests"), "--requests"),
    workers: positiveInt(str(values, "workers"), "--workers"),
    keep: ctx.keep,
    log: ctx.log,
    addresses: ctx.addresses,
  });
  ctx.log("\n# distribution");
  for (const [name, n] of Object.entries(summary.counts)) {
    const pct = summary.requests ? ((100 * n) / summary.requests).toFixed(1) : "0.0";
    ctx.log(`${name}: ${n} (${pct}%)`);
  }
  if (summary.failures) ctx.log(`failed: ${summary.failures}`);
  ctx.log(`\n# tvsadm -L -n --stats\n${summary.stats.replace(/\n$/, "")}`);
  ctx.log(
    `\n# replies bypassed the director: ${summary.repliesBypassedDirector ? "yes" : "no"} (tvsd OutPkts ${summary.directorOutPackets}, captured replies ${summary.capturedReplyPackets})`,
  );
  if (ctx.keep) ctx.log(`# kept namespaces: ${summary.namespaces.join(" ")}`);
  return { ok: summary.failures === 0, summary };
}

export const nat = forwarding("nat");
export const dr = forwarding("dr");
export const tun = forwarding("tun");
export const fullnat = forwarding("fullnat");
