// Tests for the ipvsadm argv grammar: what each command line parses into, and ipvsadm's checks.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  IpvsadmArgError,
  inetAton,
  type NameResolver,
  parseIpvsadmArgv,
  stringToNumber,
  toRequest,
} from "./ipvsadm-grammar.ts";

const resolver: NameResolver = {
  hostToIpv4: async (n) => (n === "www.example.com" ? "10.0.0.100" : undefined),
  serviceToPort: (n, p) => (n === "http" && p === "tcp" ? 80 : n === "domain" ? 53 : undefined),
};

const parse = (line: string) => parseIpvsadmArgv(line.split(" "), { resolver });

async function fails(line: string): Promise<{ message: string; exitCode: number }> {
  try {
    await parse(line);
  } catch (e) {
    if (e instanceof IpvsadmArgError) return { message: e.message, exitCode: e.exitCode };
    throw e;
  }
  throw new Error(`"${line}" parsed`);
}

test("strtol-style numbers must use the whole word", () => {
  assert.equal(stringToNumber("42", 0, 100), 42);
  assert.equal(stringToNumber("+7", 0, 100), 7);
  assert.equal(stringToNumber("42x", 0, 100), -1);
  assert.equal(stringToNumber("", 0, 100), -1);
  assert.equal(stringToNumber("101", 0, 100), -1);
});

test("inet_aton accepts the short and octal/hex forms", () => {
  assert.equal(inetAton("10.1"), "10.0.0.1");
  assert.equal(inetAton("0x7f.1"), "127.0.0.1");
  assert.equal(inetAton("010.0.0.1"), "8.0.0.1");
  assert.equal(inetAton("1.2.3.256"), undefined);
  assert.equal(inetAton("1.2.3.4.5"), undefined);
  assert.equal(inetAton("www"), undefined);
});

test("-A with names: host and port names resolve, defaults fill in", async () => {
  const p = await parse("-A -t www.example.com:http");
  assert.deepEqual(p.key, { kind: "vip", protocol: "tcp", addr: "10.0.0.100", port: 80 });
  assert.deepEqual(toRequest(p), {
    op: "add-service",
    key: { kind: "vip", protocol: "tcp", addr: "10.0.0.100", port: 80 },
    options: { scheduler: "wlc", schedFlags: [], persistent: false, timeout: 0, netmask: 32, ops: false, pe: "" },
  });
});

test("-p without a value is 360 s; -M becomes a prefix length", async () => {
  const p = await parse("-A -u 10.0.0.1:53 -p -M 255.255.0.0 -s sh -b sh-port,sh-fallback -o");
  assert.equal(p.serviceOptions.timeout, 360);
  assert.equal(p.serviceOptions.netmask, 16);
  assert.deepEqual(p.serviceOptions.schedFlags, ["sh-fallback", "sh-port"]);
  assert.equal(p.serviceOptions.ops, true);
});

test("IPv6 services: brackets for a port, prefix netmask, -f with -6", async () => {
  const a = await parse("-A -t [2001:DB8::1]:443 -p 60 -M 48");
  assert.deepEqual(a.key, { kind: "vip", protocol: "tcp", addr: "2001:db8::1", port: 443 });
  assert.equal(a.serviceOptions.netmask, 48);
  const b = await parse("-A -f 9 -6");
  assert.deepEqual(b.key, { kind: "fwmark", fwmark: 9, family: 6 });
  assert.equal(b.serviceOptions.netmask, 128);
});

test("-a: DR and tunnel take the service port, masquerading keeps its own", async () => {
  const dr = await parse("-a -t 10.0.0.1:80 -r 192.168.0.1:8080 -w 3");
  assert.deepEqual(
    { addr: dr.dest?.addr, port: dr.dest?.port, fwd: dr.dest?.fwd, w: dr.dest?.weight },
    { addr: "192.168.0.1", port: 80, fwd: "droute", w: 3 },
  );
  const nat = await parse("-a -t 10.0.0.1:80 -r 192.168.0.1:8080 -m");
  assert.equal(nat.dest?.port, 8080);
  const noPort = await parse("-a -t 10.0.0.1:80 -r 192.168.0.1 -m");
  assert.equal(noPort.dest?.port, 80);
});

test("tunnel options land in the destination", async () => {
  const p = await parse("-a -t 10.0.0.1:80 -r 192.168.0.1 -i --tun-type gue --tun-port 6080 --tun-remcsum");
  assert.deepEqual(p.dest?.tun, { type: "gue", port: 6080, nocsum: false, csum: false, remcsum: true });
});

test("clustering and glued arguments as popt reads them", async () => {
  const p = await parseIpvsadmArgv(["-Ln", "-t10.0.0.1:80"], { resolver });
  assert.equal(p.command, "list");
  assert.ok(p.format.numeric);
  assert.deepEqual(p.key, { kind: "vip", protocol: "tcp", addr: "10.0.0.1", port: 80 });
  const q = await parseIpvsadmArgv(["--add-service", "--udp-service=10.0.0.1:domain", "-p=30"], { resolver });
  assert.equal(q.serviceOptions.timeout, 30);
  assert.equal(q.key?.kind === "vip" && q.key.port, 53);
});

test("--set reads three leftovers", async () => {
  const p = await parse("--set 900 120 300");
  assert.deepEqual(toRequest(p), { op: "set-timeout", timeouts: { tcp: 900, tcpfin: 120, udp: 300 } });
});

test("the command × option matrix and its messages", async () => {
  assert.deepEqual(await fails("-A -t 10.0.0.1:80 -w 2"), {
    message: "Illegal 'weight' option with the 'add-service' command",
    exitCode: 2,
  });
  assert.deepEqual(await fails("-L -c --timeout"), {
    message: "The option 'timeout' conflicts with the 'connection' option in the 'list' command",
    exitCode: 2,
  });
  assert.deepEqual(await fails("-d -t 10.0.0.1:80"), {
    message: "You need to supply the 'real-server' option for the 'delete-server' command",
    exitCode: 2,
  });
});

test("popt errors: no command, unknown options, missing arguments", async () => {
  assert.deepEqual(await fails("-n -L"), {
    message: "Try `ipvsadm -h' or 'ipvsadm --help' for more information.",
    exitCode: 255,
  });
  assert.deepEqual(await fails("-L -Lq"), { message: "invalid option `-Lq'", exitCode: 2 });
  assert.deepEqual(await fails("-L -nq"), { message: "-nq: unknown option", exitCode: 255 });
  assert.deepEqual(await fails("-A -s"), { message: "-s: missing argument", exitCode: 255 });
  assert.deepEqual(await fails("-L --start-daemon master"), { message: "invalid option `master'", exitCode: 2 });
});

test("the first failing check wins, in ipvsadm's order", async () => {
  // generic matrix check comes before the port-0 check
  assert.equal(
    (await fails("-A -t 10.0.0.1:0 -r 1.2.3.4")).message,
    "Illegal 'real-server' option with the 'add-service' command",
  );
  // scheduler flags are checked before the matrix
  assert.equal((await fails("-L -b nosuch")).message, "invalid scheduler flag `nosuch'");
});

test("-M before an IPv6 service: the address resets the mask, as in ipvsadm", async () => {
  const p = await parse("-A -M 64 -t [2001:db8::1]:80 -p");
  assert.equal(p.serviceOptions.netmask, 128);
  assert.equal(
    (await fails("-A -t 10.0.0.1:80 -p -M 255.0.255.0")).message,
    "illegal virtual server persistent mask specified",
  );
});
