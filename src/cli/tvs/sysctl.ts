// `tvs sysctl [NAME[=VALUE]]`: read or set tvsd's IPVS sysctls by the kernel's names, as
// `sysctl net.ipv4.vs.NAME[=VALUE]` does for the kernel (core/conn/sysctl.ts lists them). Without a
// name every one is printed with the defence strategy's state; NAME may carry the net.ipv4.vs.
// prefix. Values are checked here first and again by tvsd.

import { ApiError, ControlConnectError, HttpControlClient } from "../../control/api/client.ts";
import type { SysctlView } from "../../control/api/protocol.ts";
import { defaultSocketPath } from "../../control/api/socket-path.ts";
import { checkSysctlName, parseSysctlAssignment, SYSCTL_SPEC, type SysctlName } from "../../core/conn/sysctl.ts";
import { readClientArgs } from "./client-args.ts";

const USAGE = "Usage: tvs sysctl [--socket PATH] [--json] [NAME[=VALUE]]\n";

export function formatSysctls(v: SysctlView, only?: SysctlName): string {
  if (only !== undefined) return `net.ipv4.vs.${only} = ${v.sysctls[only]}\n`;
  const lines = Object.entries(v.sysctls).map(
    ([k, n]) => `net.ipv4.vs.${k} = ${n}`.padEnd(44) + `# ${SYSCTL_SPEC[k as SysctlName]?.doc ?? ""}`,
  );
  const d = v.defense;
  lines.push(
    `defence: drop_entry ${d.dropEntry ? "on" : "off"}, secure_tcp ${d.secureTcp ? "on" : "off"}, ` +
      `drop_packet ${d.dropRate === 0 ? "off" : `1 in ${d.dropRate}`}; free entries ${d.available}; ` +
      `entries dropped ${d.entriesDropped}, new connections dropped ${d.packetsDropped}`,
  );
  return `${lines.join("\n")}\n`;
}

export async function run(argv: string[]): Promise<number> {
  const args = readClientArgs(argv, USAGE, 1);
  if ("exit" in args) return args.exit;
  const { socket, json } = args;
  const arg = args.operands[0];
  let name: SysctlName | undefined;
  let value: number | undefined;
  try {
    if (arg?.includes("=")) ({ name, value } = parseSysctlAssignment(arg, "tvs sysctl"));
    else if (arg !== undefined) name = checkSysctlName(arg, "tvs sysctl");
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n`);
    return 2;
  }
  const client = new HttpControlClient({ socketPath: defaultSocketPath({ explicit: socket }) });
  try {
    const v = await client.sysctl(name !== undefined && value !== undefined ? { name, value } : undefined);
    process.stdout.write(json ? `${JSON.stringify(v, null, 2)}\n` : formatSysctls(v, name));
    return 0;
  } catch (e) {
    const msg =
      e instanceof ControlConnectError
        ? e.message
        : `tvsd refused the sysctl request: ${e instanceof ApiError ? e.message : (e as Error).message}`;
    process.stderr.write(`${msg}\n`);
    return 1;
  }
}
