// Loading the addon: where it is missing, the error says why and what to do, and the plane
// factory refuses with that message (run in child processes: the loader caches its result).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { test } from "node:test";

const probe = (code: string, env: Record<string, string>) =>
  spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", code], {
    env: { ...process.env, ...env },
    encoding: "utf8",
  });

test("a missing addon is explained with the remedy, by loadNative and by createPacketDataPlane", () => {
  const r = probe(
    `import { loadNative, nativeStatus, createPacketDataPlane } from "./src/dataplane/packet/index.ts";
     const s = nativeStatus();
     let plane = "";
     try { createPacketDataPlane({ interface: "eth0" }); } catch (e) { plane = e.name + ": " + e.message; }
     console.log(JSON.stringify({ s, plane }));`,
    { TVS_NATIVE_PATH: "/nonexistent/tvs_native.node" },
  );
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { s: { ok: boolean; reason?: string }; plane: string };
  assert.equal(out.s.ok, false);
  assert.match(out.s.reason ?? "", /"\/nonexistent\/tvs_native\.node" is missing/);
  assert.match(out.s.reason ?? "", /npm run build:native/);
  assert.match(out.s.reason ?? "", /--dataplane proxy/);
  assert.match(out.plane, /^NativeUnavailableError: The native addon is not built/);
});

test("importing the packet plane does not load the addon", () => {
  const r = probe(
    `await import("./src/dataplane/packet/index.ts");
     const loaded = Object.keys((await import("node:module")).createRequire(import.meta.url).cache).some((k) => k.endsWith(".node"));
     console.log(loaded);`,
    {},
  );
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), "false");
});
