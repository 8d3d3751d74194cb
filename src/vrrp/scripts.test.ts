import assert from "node:assert/strict";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { insecureReason, ProcessScriptRunner, passwdUser, splitCommand } from "./scripts.ts";

test("command lines split as keepalived splits them (quotes group words)", () => {
  assert.deepEqual(splitCommand("/usr/bin/curl -sf http://127.0.0.11/"), [
    "/usr/bin/curl",
    "-sf",
    "http://127.0.0.11/",
  ]);
  assert.deepEqual(splitCommand(`/bin/sh -c "echo a b" 'x y'`), ["/bin/sh", "-c", "echo a b", "x y"]);
  assert.deepEqual(splitCommand(`/bin/x ""`), ["/bin/x", ""]);
});

test("notify arguments are appended; exit status and timeouts are reported", async () => {
  const dir = mkdtempSync(join(tmpdir(), "tvs-vrrp-scripts-"));
  try {
    const out = join(dir, "out");
    const s = join(dir, "n.sh");
    writeFileSync(s, `#!/bin/sh\necho "$@" > ${out}\nexit 3\n`);
    chmodSync(s, 0o755);
    const r = new ProcessScriptRunner({ secure: false });
    const res = await r.run(`${s} first`, ["INSTANCE", "VI_1", "MASTER", "100"], { timeoutMs: 5000 });
    assert.equal(res.code, 3);
    const { readFileSync } = await import("node:fs");
    assert.equal(readFileSync(out, "utf8"), "first INSTANCE VI_1 MASTER 100\n");
    const slow = await r.run("/bin/sleep 5", [], { timeoutMs: 100 });
    assert.equal(slow.code, null);
    assert.match(slow.error ?? "", /timed out/);
    const missing = await r.run("/nonexistent/tvs-script", [], { timeoutMs: 1000 });
    assert.equal(missing.code, null);
    const unknownUser = await new ProcessScriptRunner({ secure: false, lookupUser: () => undefined }).run(s, [], {
      timeoutMs: 1000,
      user: "nobody-such",
    });
    assert.match(unknownUser.error ?? "", /unknown script_user "nobody-such"/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("enable_script_security: a script others can change is refused", () => {
  const dir = mkdtempSync(join(tmpdir(), "tvs-vrrp-sec-"));
  try {
    const sub = join(dir, "d");
    mkdirSync(sub);
    const s = join(sub, "chk.sh");
    writeFileSync(s, "#!/bin/sh\nexit 0\n");
    chmodSync(s, 0o777);
    assert.match(insecureReason(s) ?? "", /writable by every user|owned by uid/);
    assert.match(insecureReason("relative.sh") ?? "", /not an absolute path/);
    if (process.getuid?.() === 0) assert.equal(insecureReason("/bin/sh"), undefined);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("script_user resolves from a passwd file", () => {
  const dir = mkdtempSync(join(tmpdir(), "tvs-vrrp-pw-"));
  try {
    const pw = join(dir, "passwd");
    writeFileSync(pw, "root:x:0:0:root:/root:/bin/sh\nkeepalived_script:x:998:997::/:/usr/sbin/nologin\n");
    assert.deepEqual(passwdUser("keepalived_script", pw), { uid: 998, gid: 997 });
    assert.deepEqual(passwdUser("998", pw), { uid: 998, gid: 997 });
    assert.equal(passwdUser("nobody-such", pw), undefined);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
