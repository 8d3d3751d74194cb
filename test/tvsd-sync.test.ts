// tvsadm's sync-daemon commands against a real tvsd: --start-daemon with every daemon option,
// -L --daemon printed as ipvsadm prints it (the kernel's defaults filled in), --stop-daemon, and
// the kernel's refusals with ipvsadm's words and exit status; tvs status reports the daemons.
import assert from "node:assert/strict";
import { test } from "node:test";
import { startTvsd } from "./tvsd-harness.ts";

test("sync daemons through tvsadm: start, list, refuse, stop", async (t) => {
  const d = await startTvsd();
  t.after(() => d.stop());
  assert.deepEqual(await d.tvsadm("-L", "--daemon"), { code: 0, out: "", err: "" });
  assert.equal((await d.tvsadm("--start-daemon", "master", "--mcast-interface", "lo")).code, 0);
  const backup = await d.tvsadm(
    "--start-daemon",
    "backup",
    "--mcast-interface",
    "lo",
    "--syncid",
    "7",
    "--sync-maxlen",
    "1200",
    "--mcast-group",
    "239.7.7.7",
    "--mcast-port",
    "9848",
    "--mcast-ttl",
    "2",
  );
  assert.equal(backup.code, 0, backup.err);
  assert.equal(
    (await d.tvsadm("-L", "--daemon")).out,
    "master sync daemon (mcast=lo, syncid=0, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\n" +
      "backup sync daemon (mcast=lo, syncid=7, maxlen=1200, group=239.7.7.7, port=9848, ttl=2)\n",
  );
  assert.deepEqual(await d.tvsadm("--start-daemon", "master", "--mcast-interface", "lo"), {
    code: 255,
    out: "",
    err: "Daemon has already run\n",
  });
  const nodev = await d.tvsadm("--start-daemon", "master", "--mcast-interface", "tvsnone0");
  assert.equal(nodev.code, 255);
  assert.equal(nodev.err, "No such device\n");
  assert.equal((await d.tvsadm("--stop-daemon", "master")).code, 0);
  assert.deepEqual(await d.tvsadm("--stop-daemon", "master"), { code: 255, out: "", err: "No daemon is running\n" });
  assert.equal(
    (await d.tvsadm("-L", "--daemon")).out,
    "backup sync daemon (mcast=lo, syncid=7, maxlen=1200, group=239.7.7.7, port=9848, ttl=2)\n",
  );
  const status = await d.client.status();
  assert.ok(
    status.notes.some((n) => n.startsWith("Sync backup on lo (syncid 7, 239.7.7.7:9848)")),
    status.notes.join("\n"),
  );
  assert.ok(status.notes.some((n) => n.includes("TCP connections cannot move to another host")));
  assert.equal((await d.tvsadm("--stop-daemon", "backup")).code, 0);
  assert.equal((await d.tvsadm("-L", "--daemon")).out, "");
});

test("--sync-daemon starts a master and a backup with tvsd, as -L --daemon shows", async (t) => {
  const d = await startTvsd([
    "--sync-daemon",
    "master:lo,syncid=3",
    "--sync-daemon",
    "backup:lo,syncid=0,group=239.7.7.8,port=9849,ttl=2,maxlen=1300",
  ]);
  t.after(() => d.stop());
  assert.equal(
    (await d.tvsadm("-L", "--daemon")).out,
    "master sync daemon (mcast=lo, syncid=3, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\n" +
      "backup sync daemon (mcast=lo, syncid=0, maxlen=1300, group=239.7.7.8, port=9849, ttl=2)\n",
  );
  // They are ordinary daemons: tvsadm stops them.
  assert.equal((await d.tvsadm("--stop-daemon", "master")).code, 0);
  assert.equal(
    (await d.tvsadm("-L", "--daemon")).out,
    "backup sync daemon (mcast=lo, syncid=0, maxlen=1300, group=239.7.7.8, port=9849, ttl=2)\n",
  );
});

test("--sync-daemon on an interface that does not exist stops tvsd's start, naming it", async () => {
  await assert.rejects(
    startTvsd(["--sync-daemon", "backup:tvsnone0"]),
    /--sync-daemon backup:tvsnone0: Unknown mcast interface "tvsnone0"/,
  );
});
