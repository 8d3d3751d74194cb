// `tvs realserver start|stop|status --vip ADDR [--mode dr|tun] [--tun-type ipip|gue|gre]
// [--tun-port N] [--json]`: prepares this host as an LVS real server for DR or TUN (see
// src/realserver/setup.ts) and undoes it. The tunnel type is the director's --tun-type; GUE needs
// the director's --tun-port, which the other types refuse (as ipvsadm does).

import { join } from "node:path";
import { parseArgs } from "node:util";
import type { DecapTunnel } from "../../realserver/decap.ts";
import { realServerStatus, startRealServer, stopRealServer } from "../../realserver/setup.ts";

const USAGE =
  "Usage: tvs realserver start|stop|status [--vip ADDR] [--mode dr|tun] [--tun-type ipip|gue|gre] [--tun-port N] [--json]\n";
const TVS_BIN = join(import.meta.dirname, "..", "..", "..", "bin", "tvs.js");

export async function run(argv: string[]): Promise<number> {
  if (argv.includes("--help") || argv.includes("-h")) {
    process.stdout.write(USAGE);
    return 0;
  }
  let values: {
    vip?: string | undefined;
    mode: string;
    json: boolean;
    device?: string | undefined;
    "tun-type"?: string | undefined;
    "tun-port"?: string | undefined;
  };
  let action: string | undefined;
  try {
    const p = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        vip: { type: "string" },
        mode: { type: "string", default: "dr" },
        json: { type: "boolean", default: false },
        device: { type: "string" },
        "tun-type": { type: "string" },
        "tun-port": { type: "string" },
      },
    });
    values = p.values;
    action = p.positionals[0];
    if (p.positionals.length !== 1) throw new Error(`Expected one action, got "${p.positionals.join(" ")}"`);
  } catch (e) {
    process.stderr.write(`tvs realserver: ${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  const out = (v: unknown, text: string) => process.stdout.write(values.json ? `${JSON.stringify(v)}\n` : text);
  try {
    switch (action) {
      case "start": {
        if (!values.vip) throw new UsageError("start needs --vip ADDR");
        if (values.mode !== "dr" && values.mode !== "tun")
          throw new UsageError(`Mode "${values.mode}" must be dr or tun`);
        const tunnel = tunnelOf(values);
        if (values.mode !== "tun" && (values["tun-type"] !== undefined || values["tun-port"] !== undefined))
          throw new UsageError("--tun-type and --tun-port need --mode tun");
        const s = startRealServer({
          vip: values.vip,
          mode: values.mode,
          decapCommand: [process.execPath, TVS_BIN, "realserver", "decap"],
          tunnel,
        });
        const kind = `${(s.tunType ?? "ipip").toUpperCase()}${s.tunPort ? ` (UDP port ${s.tunPort})` : ""}`;
        out(
          s,
          `real server ready for ${s.mode.toUpperCase()}: VIP ${s.vip}/32 on lo, arp_ignore=1, arp_announce=2${s.decapPid ? `, ${kind} decapsulator pid ${s.decapPid} on ${s.tunDevice}` : ""}\n`,
        );
        return 0;
      }
      case "stop": {
        if (!values.vip) throw new UsageError("stop needs --vip ADDR");
        const s = stopRealServer(values.vip);
        out(
          s ?? null,
          s ? `restored: VIP ${s.vip} removed, sysctls put back\n` : `nothing configured for VIP "${values.vip}"\n`,
        );
        return 0;
      }
      case "status": {
        const st = realServerStatus();
        const lines = [
          `VIPs on lo: ${st.vipsOnLo.join(" ") || "(none)"}`,
          ...Object.entries(st.sysctls).map(([k, v]) => `${k} = ${v}`),
          `kernel ipip: ${st.kernelIpip ? "yes" : "no (TUN mode decapsulates in userspace)"}`,
          ...st.configured.map(
            (s) =>
              `configured: ${s.vip} mode ${s.mode}${s.tunType ? ` tunnel ${s.tunType}${s.tunPort ? ` port ${s.tunPort}` : ""}` : ""} since ${s.startedAt}${s.decapPid ? ` decapsulator pid ${s.decapPid} ${st.decapRunning[s.vip] ? "running" : "NOT running"}` : ""}`,
          ),
        ];
        out(st, `${lines.join("\n")}\n`);
        return 0;
      }
      case "decap": {
        if (!values.vip || !values.device) throw new UsageError("decap needs --vip ADDR --device NAME");
        const { runDecapsulator } = await import("../../realserver/decap.ts");
        return await runDecapsulator(values.vip, values.device, tunnelOf(values));
      }
      default:
        throw new UsageError(`Unknown action "${action}"`);
    }
  } catch (e) {
    process.stderr.write(`tvs realserver: ${(e as Error).message}\n`);
    if (e instanceof UsageError) process.stderr.write(USAGE);
    return e instanceof UsageError ? 2 : 1;
  }
}

class UsageError extends Error {}

/** --tun-type / --tun-port, checked as ipvsadm checks them: GUE needs a port, the others take none. */
function tunnelOf(v: { "tun-type"?: string | undefined; "tun-port"?: string | undefined }): DecapTunnel {
  const type = v["tun-type"] ?? "ipip";
  if (type !== "ipip" && type !== "gue" && type !== "gre")
    throw new UsageError(`Tunnel type "${type}" must be ipip, gue or gre`);
  const portText = v["tun-port"];
  if (type !== "gue") {
    if (portText !== undefined) throw new UsageError(`Tunnel type "${type}" takes no --tun-port`);
    return { type, port: 0 };
  }
  if (portText === undefined) throw new UsageError(`Tunnel type "gue" needs --tun-port N`);
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port < 1 || port > 65535)
    throw new UsageError(`Tunnel port "${portText}" must be 1..65535`);
  return { type, port };
}
