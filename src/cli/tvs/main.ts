// `tvs`: dispatches to its subcommands (lab, realserver, check-config, status, sysctl, fwmark, top). Each subcommand
// lives in its own file and is loaded only when used.

type Sub = { summary: string; load: () => Promise<{ run(argv: string[]): Promise<number> }> };

const SUBCOMMANDS: Record<string, Sub> = {
  lab: { summary: "reproduce the LVS experiments in network namespaces", load: () => import("./lab.ts") },
  realserver: { summary: "configure this host as a DR/TUN real server", load: () => import("./realserver.ts") },
  "check-config": { summary: "check a keepalived.conf or ldirectord.cf", load: () => import("./check-config.ts") },
  status: { summary: "show tvsd's data plane and health-check state", load: () => import("./status.ts") },
  sysctl: {
    summary: "read or set tvsd's IPVS sysctls by the kernel's names (drop_entry, secure_tcp, ...)",
    load: () => import("./sysctl.ts"),
  },
  fwmark: {
    summary: "list the packet plane's firewall-mark rules and the fwmark services they feed",
    load: () => import("./fwmark.ts"),
  },
  top: {
    summary: "watch services, real servers, rates and health live (like watch ipvsadm -L --rate)",
    load: () => import("./top.ts"),
  },
};

function usage(): string {
  const lines = ["Usage: tvs <command> [options]", "       tvs --version", "", "Commands:"];
  for (const [name, s] of Object.entries(SUBCOMMANDS)) lines.push(`  ${name.padEnd(14)}${s.summary}`);
  return `${lines.join("\n")}\n`;
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === undefined || cmd === "-h" || cmd === "--help" || cmd === "help") {
    process.stdout.write(usage());
    return cmd === undefined ? 2 : 0;
  }
  if (cmd === "--version" || cmd === "-V") {
    const { packageVersion } = await import("../../platform/package-version.ts");
    process.stdout.write(`tvs ${packageVersion()}\n`);
    return 0;
  }
  const sub = SUBCOMMANDS[cmd];
  if (!sub) {
    process.stderr.write(`Unknown command "${cmd}"\n${usage()}`);
    return 2;
  }
  const mod = await sub.load();
  return mod.run(rest);
}
