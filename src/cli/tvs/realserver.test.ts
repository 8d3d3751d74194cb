// `tvs realserver start` refuses tunnel options it cannot honour before it changes anything on
// the host (so this runs unprivileged): an unknown type, GUE without a port, a port on ipip/gre,
// a bad port, tunnel options outside TUN mode. Exit 2 with the usage, as for other bad input.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { test } from "node:test";

const TVS = join(import.meta.dirname, "..", "..", "..", "bin", "tvs.js");

test("tvs realserver start refuses tunnel options ipvsadm would refuse, naming the option", () => {
  const cases: [string[], RegExp][] = [
    [["--mode", "tun", "--tun-type", "vxlan"], /Tunnel type "vxlan" must be ipip, gue or gre/],
    [["--mode", "tun", "--tun-type", "gue"], /Tunnel type "gue" needs --tun-port N/],
    [["--mode", "tun", "--tun-type", "gre", "--tun-port", "5555"], /Tunnel type "gre" takes no --tun-port/],
    [["--mode", "tun", "--tun-port", "5555"], /Tunnel type "ipip" takes no --tun-port/],
    [["--mode", "tun", "--tun-type", "gue", "--tun-port", "70000"], /Tunnel port "70000" must be 1\.\.65535/],
    [["--mode", "tun", "--tun-type", "gue", "--tun-port", "0"], /Tunnel port "0" must be 1\.\.65535/],
    [["--mode", "dr", "--tun-type", "gre"], /--tun-type and --tun-port need --mode tun/],
  ];
  for (const [args, message] of cases) {
    const r = spawnSync(process.execPath, [TVS, "realserver", "start", "--vip", "10.1.2.3", ...args], {
      encoding: "utf8",
    });
    assert.equal(r.status, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, message, args.join(" "));
    assert.match(r.stderr, /Usage: tvs realserver/, "the usage follows");
  }
});
