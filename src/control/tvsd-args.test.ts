// tvsd's flags for the packet plane's workers: --workers N applies to both planes, --fanout takes
// cbpf (the default) or hash, and anything else is refused naming the value.
import assert from "node:assert/strict";
import { test } from "node:test";
import { parseTvsdArgs, UsageError } from "./tvsd-main.ts";

const packet = ["--dataplane", "packet", "--interface", "eth0"];

test("--workers with the packet plane, steered fanout by default", () => {
  const a = parseTvsdArgs([...packet, "--workers", "4"]);
  assert.equal(a.workers, 4);
  assert.equal(a.fanout, "cbpf");
  assert.equal(parseTvsdArgs([...packet, "--workers", "2", "--fanout", "hash"]).fanout, "hash");
});

test("a bad --fanout or --workers value is a usage error naming it", () => {
  assert.throws(
    () => parseTvsdArgs([...packet, "--fanout", "random"]),
    (e: unknown) => e instanceof UsageError && /Invalid --fanout "random" \(expected cbpf or hash\)/.test(e.message),
  );
  assert.throws(
    () => parseTvsdArgs([...packet, "--workers", "0"]),
    (e: unknown) => e instanceof UsageError && /Invalid --workers "0"/.test(e.message),
  );
});

test("--fd-reserve and --udp-flow-limit reach the socket plane's options; bad values are refused", () => {
  const a = parseTvsdArgs(["--fd-reserve", "200", "--udp-flow-limit", "5000"]);
  assert.equal(a.proxy.fdReserve, 200);
  assert.equal(a.proxy.udpFlowLimit, 5000);
  const d = parseTvsdArgs([]);
  assert.equal(d.proxy.fdReserve, undefined);
  assert.equal(d.proxy.udpFlowLimit, undefined);
  assert.throws(
    () => parseTvsdArgs(["--udp-flow-limit", "0"]),
    (e: unknown) => e instanceof UsageError && /Invalid --udp-flow-limit "0"/.test(e.message),
  );
  assert.throws(
    () => parseTvsdArgs(["--fd-reserve", "-1"]),
    (e: unknown) => e instanceof UsageError && /Invalid --fd-reserve "-1"/.test(e.message),
  );
});

test("an option of one data plane given with the other is refused, naming the option and its plane", () => {
  const socketOnly: string[][] = [
    ["--fwmark-addr", "1=tcp:10.0.0.1:80"],
    ["--proxy-protocol", "tcp:10.0.0.1:80=v1"],
    ["--retry-connect"],
    ["--connect-timeout", "100"],
    ["--tcp-relay", "stream"],
    ["--fd-reserve", "100"],
    ["--udp-flow-limit", "100"],
  ];
  for (const opt of socketOnly) {
    assert.doesNotThrow(() => parseTvsdArgs(opt), `${opt[0]} works on the socket plane`);
    assert.throws(
      () => parseTvsdArgs([...packet, ...opt]),
      (e: unknown) =>
        e instanceof UsageError && e.message.startsWith(`${opt[0]} is an option of the socket data plane`),
      `${opt[0]} is refused on the packet plane`,
    );
  }
  assert.throws(
    () => parseTvsdArgs(["--workers", "2", "--fanout", "hash"]),
    (e: unknown) => e instanceof UsageError && /--fanout is an option of the packet data plane/.test(e.message),
  );
  assert.throws(
    () => parseTvsdArgs(["--interface", "eth0"]),
    (e: unknown) => e instanceof UsageError && /--interface is an option of the packet data plane/.test(e.message),
  );
});

test("--tcp-relay names the socket plane's TCP relay; anything else is refused naming the value", () => {
  assert.equal(parseTvsdArgs([]).proxy.relay, undefined, "default: the fastest available");
  for (const r of ["native", "handle", "stream"] as const)
    assert.equal(parseTvsdArgs(["--tcp-relay", r]).proxy.relay, r);
  assert.throws(
    () => parseTvsdArgs(["--tcp-relay", "splice"]),
    (e: unknown) =>
      e instanceof UsageError && /Invalid --tcp-relay "splice" \(expected native, handle or stream\)/.test(e.message),
  );
});
