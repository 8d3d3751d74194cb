// Known differences between tvs and the kernel oracle, each listed in docs/compat.md with its reason.
// The differential suites still run these comparisons and print them, but mark them TODO so the
// suite can gate CI on everything else; a fixed difference simply starts passing. Keys are sequence
// names; the target is "tvsd", "director" or "*" (both).

export interface KnownDifference {
  target: "tvsd" | "director" | "*";
  kind: "bug" | "deliberate" | "nondeterministic";
  reason: string;
}

export const KNOWN_CLI_DIFFERENCES: Record<string, KnownDifference> = {
  "restore-ok": {
    target: "*",
    kind: "deliberate",
    reason: "ipvsadm -R rejects '#' comment lines (usage hint, exit 255); tvsadm -R accepts comments",
  },
  "restore-bad-line": {
    target: "*",
    kind: "deliberate",
    reason: "ipvsadm -R stops at a bad line keeping earlier lines applied; tvsadm -R is atomic and names the line",
  },
  "restore-refused": {
    target: "*",
    kind: "deliberate",
    reason: "ipvsadm -R prints a kernel refusal and goes on (exit 0); tvsadm -R is atomic (exit 255, nothing applied)",
  },
  "restore-list-line": {
    target: "*",
    kind: "deliberate",
    reason: "ipvsadm -R runs any command, -L included; tvsadm -R accepts only table-changing rules",
  },
  "k-list-nosort": {
    target: "*",
    kind: "nondeterministic",
    reason: "--nosort prints the kernel's service hash order, which mixes in the netns pointer (differs per boot)",
  },
  "k-schedulers": {
    target: "*",
    kind: "deliberate",
    reason: "Debian 6.1 has no twos scheduler (CONFIG_IP_VS_TWOS unset); tvs has it as 6.12 does",
  },
  "k-persistence": {
    target: "*",
    kind: "bug",
    reason: "ipvsadm parses an IPv4 -M with inet_aton: '-M 24' is the mask 0.0.0.24; tvsadm rejects it",
  },
  "k-daemon": {
    target: "*",
    kind: "bug",
    reason:
      "tvsd's sync daemons (src/sync) follow start_sync_thread (a backup's maxlen raised to 1024, the defaults) but this sequence has not been run against the guest since they landed",
  },
};

/** tvsd's data-plane refusals the kernel does not have (docs/compat.md, "tvsd data-plane limits"). */
export function isDataPlaneLimit(stderr: string): boolean {
  return stderr.startsWith("Operation not supported:");
}
