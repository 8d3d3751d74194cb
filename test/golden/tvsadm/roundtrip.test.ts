// Property tests: (1) what -S prints, -R restores to the same table (every service form, option,
// forwarding method and tunnel setting, in random combinations); (2) the argv grammar answers any
// word salad with a parsed command or an ipvsadm argument error, never anything else.
import assert from "node:assert/strict";
import { test } from "node:test";
import { main } from "../../../src/cli/tvsadm/main.ts";
import { IpvsadmArgError, parseIpvsadmArgv } from "../../../src/config/ipvsadm-grammar.ts";
import { DirectorClient, testBed, testResolver } from "./harness.ts";

/** xorshift32: a fixed sequence, so failures reproduce. */
function prng(seed: number): (n: number) => number {
  let x = seed >>> 0 || 1;
  return (n) => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x % n;
  };
}

async function run(client: DirectorClient, args: string[], stdin = "") {
  let out = "";
  let err = "";
  const code = await main(args, {
    client,
    stdout: { write: (s: string) => (out += s) },
    stderr: { write: (s: string) => (err += s) },
    resolver: testResolver(),
    readStdin: async () => stdin,
  });
  return { code, out, err };
}

function randomRules(r: (n: number) => number): string[] {
  const lines: string[] = [];
  const n = 1 + r(6);
  for (let i = 0; i < n; i++) {
    const kind = r(5);
    const port = 1 + r(65535);
    let svc: string;
    let v6 = false;
    if (kind === 0) svc = `-t 10.${r(256)}.${r(256)}.${1 + r(254)}:${port}`;
    else if (kind === 1) svc = `-u 172.16.${r(256)}.${1 + r(254)}:${port}`;
    else if (kind === 2) svc = `--sctp-service 192.168.${r(256)}.${1 + r(254)}:${port}`;
    else if (kind === 3) {
      svc = `-t [2001:db8::${(1 + r(0xfffe)).toString(16)}]:${port}`;
      v6 = true;
    } else {
      v6 = r(2) === 1;
      svc = `-f ${1 + r(100000)}${v6 ? " -6" : ""}`;
    }
    const sched = ["rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh"][
      r(13)
    ] as string;
    let a = `-A ${svc} -s ${sched}`;
    if (r(2)) {
      a += ` -p ${1 + r(3600)}`;
      if (r(2))
        a += v6 ? ` -M ${1 + r(128)}` : ` -M ${["255.255.255.0", "255.255.0.0", "0.0.0.0", "255.255.255.252"][r(4)]}`;
      if (r(4) === 0) a += " --pe sip";
    }
    if (kind === 1 && r(2)) a += " -o";
    if ((sched === "sh" || sched === "mh") && r(2)) a += ` -b ${sched}-${["port", "fallback"][r(2)]}`;
    lines.push(a);
    const dests = r(5);
    const used = new Set<string>();
    for (let j = 0; j < dests; j++) {
      const fwd = r(4);
      const addr = v6 && fwd !== 2 ? `[2001:db8:1::${(1 + r(0xfffe)).toString(16)}]` : `192.0.2.${1 + r(254)}`;
      const dport = 1 + r(65535);
      if (used.has(addr)) continue;
      used.add(addr);
      let d = `-a ${svc} -r ${addr}:${dport} -w ${r(100000)}`;
      if (fwd === 0) d += " -m";
      else if (fwd === 1) d += " -g";
      else if (fwd === 2) {
        d += " -i";
        const t = r(3);
        if (t === 1)
          d += ` --tun-type gue --tun-port ${1 + r(65535)} ${["--tun-nocsum", "--tun-csum", "--tun-remcsum"][r(3)]}`;
        if (t === 2) d += ` --tun-type gre ${["--tun-nocsum", "--tun-csum"][r(2)]}`;
      } else d += " --fullnat";
      lines.push(d);
    }
  }
  return lines;
}

test("-S output restores with -R to the same table", async () => {
  const r = prng(20261121);
  for (let round = 0; round < 60; round++) {
    const bed = await testBed();
    const client = new DirectorClient(bed.director);
    const rules = randomRules(r);
    const first = await run(client, ["-R"], rules.join("\n"));
    assert.deepEqual(first, { code: 0, out: "", err: "" }, rules.join("\n"));
    const saved = await run(client, ["-S", "-n"]);
    const again = await testBed();
    const client2 = new DirectorClient(again.director);
    assert.equal((await run(client2, ["-R"], saved.out)).code, 0, saved.out);
    assert.equal((await run(client2, ["-S", "-n"])).out, saved.out);
    // Sorted listings agree; the kernel list order does not survive -S/-R (ipvsadm's neither:
    // -S prints destinations sorted and each add goes to the list head).
    assert.equal(
      (await run(client2, ["-L", "-n", "--tun-info"])).out,
      (await run(client, ["-L", "-n", "--tun-info"])).out,
    );
  }
});

test("any argv: a parsed command or an ipvsadm argument error", async () => {
  const words = [
    "-A",
    "-E",
    "-D",
    "-C",
    "-R",
    "-S",
    "-a",
    "-e",
    "-d",
    "-L",
    "-Z",
    "--set",
    "-h",
    "-v",
    "-t",
    "-u",
    "-f",
    "-6",
    "--sctp-service",
    "-s",
    "-p",
    "-M",
    "-r",
    "-m",
    "-g",
    "-i",
    "-w",
    "-x",
    "-y",
    "-n",
    "-c",
    "--stats",
    "--rate",
    "--timeout",
    "--daemon",
    "--exact",
    "-o",
    "--pe",
    "-b",
    "--tun-type",
    "--tun-port",
    "--tun-csum",
    "--start-daemon",
    "--stop-daemon",
    "--syncid",
    "--mcast-group",
    "master",
    "backup",
    "10.0.0.1:80",
    "[::1]:80",
    "::1",
    "1",
    "0",
    "-1",
    "rr",
    "sh",
    "sh-port",
    "gue",
    "255.255.255.0",
    "64",
    "x",
    "--",
    "-Ln",
    "-At",
    "--bogus",
    "",
    "www.example.com:http",
  ];
  const r = prng(7);
  for (let i = 0; i < 3000; i++) {
    const argv = Array.from({ length: 1 + r(7) }, () => words[r(words.length)] as string);
    try {
      await parseIpvsadmArgv(argv, { resolver: testResolver() });
    } catch (e) {
      assert.ok(e instanceof IpvsadmArgError, `${argv.join(" ")}: ${String(e)}`);
      assert.ok(e.exitCode === 2 || e.exitCode === 255);
    }
  }
});
