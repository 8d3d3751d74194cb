// The package as a user meets it: `npm pack` builds the tarball (compiled dist/, no TypeScript, no
// tests), `npm install -g --prefix TMP tarball` installs it from a clean directory (runtime
// dependencies from the registry, the native addon compiled where there is a compiler), and the
// installed bins work: `tvsd --demo` in a network namespace of its own (the demo's fixed loopback
// ports cannot collide with anything else on the machine), `tvsadm -L -n` and a request through
// the VIP, `--version` everywhere, the config checker. A second install with the native build
// switched off still has a working CLI, config checker and socket plane, and a packet plane that
// says why it cannot start. The man pages render with `man -l` and are found through the prefix,
// and the systemd unit passes `systemd-analyze verify` with the installed commands in it.
//
// Slow (two installs, about a minute): a lab test, run alone with
//   node --import tsx --test test/lab/package-install.lab.test.ts

import assert from "node:assert/strict";
import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { test } from "node:test";

const ROOT = resolve(import.meta.dirname, "..", "..");
const root = process.getuid?.() === 0;
const has = (cmd: string) => spawnSync("sh", ["-c", `command -v ${cmd}`]).status === 0;

function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeout?: number } = {}) {
  const r = spawnSync(cmd, args, {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    encoding: "utf8",
    timeout: opts.timeout ?? 60_000,
  });
  return { status: r.status, out: r.stdout ?? "", err: r.stderr ?? "", text: `${r.stdout}${r.stderr}` };
}

async function waitFor<T>(what: string, fn: () => T | undefined, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** npm install -g of the tarball into `prefix`, run from an empty directory. */
function installInto(prefix: string, tarball: string, cwd: string, env: NodeJS.ProcessEnv = {}) {
  mkdirSync(cwd, { recursive: true });
  const r = run("npm", ["install", "-g", "--prefix", prefix, "--no-audit", "--no-fund", tarball], {
    cwd,
    env: { ...process.env, ...env },
    timeout: 300_000,
  });
  assert.equal(r.status, 0, `npm install -g failed:\n${r.text}`);
  return r;
}

test(
  "npm pack, npm install -g from the tarball, and the installed commands",
  {
    skip: root ? false : "needs root (the demo runs in its own network namespace)",
    timeout: 900_000,
  },
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), "tvs-pkg-"));
    t.after(() => rmSync(dir, { recursive: true, force: true }));

    // --- pack: compiled code, man pages, units; no TypeScript sources and no tests.
    const packed = run("npm", ["pack", "--json", "--pack-destination", dir], { cwd: ROOT, timeout: 300_000 });
    assert.equal(packed.status, 0, packed.text);
    const info = JSON.parse(packed.out) as { filename: string; files: { path: string }[] }[];
    const files = (info[0]?.files ?? []).map((f) => f.path);
    const tarball = join(dir, info[0]?.filename ?? "");
    assert.ok(existsSync(tarball), `no tarball at ${tarball}`);
    for (const f of [
      "dist/bin/tvsd.js",
      "dist/bin/tvsadm.js",
      "dist/bin/tvs.js",
      "bin/tvsd.js",
      "bin/tvsadm.cjs",
      "dist/bin/tvsadm.cjs",
      "bin/tvs.cjs",
      "dist/src/cli/tvs/status.cjs",
      "man/tvsd.8",
      "man/tvsadm.8",
      "man/tvs.8",
      "packaging/systemd/tvsd.service",
      "packaging/bash-completion/tvsadm",
      "native/binding.gyp",
      "tools/build-native.mjs",
      "docs/operators-guide.md",
    ])
      assert.ok(files.includes(f), `${f} is not in the tarball`);
    assert.deepEqual(
      files.filter((f) => f.endsWith(".ts") || f.includes(".test.") || f.startsWith("test/") || f.startsWith("src/")),
      [],
    );
    const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as {
      version: string;
      dependencies?: Record<string, string>;
    };
    assert.equal(pkg.dependencies?.tsx, undefined, "tsx must be a development dependency only");

    // --- install with the native addon (this machine has a compiler).
    const prefix = join(dir, "prefix");
    installInto(prefix, tarball, join(dir, "clean"));
    const bin = (name: string) => join(prefix, "bin", name);
    const installed = join(prefix, "lib", "node_modules", "tvs");
    assert.ok(!existsSync(join(installed, "src")), "the installed package has no sources");
    assert.ok(!existsSync(join(installed, "node_modules", "tsx")), "tsx was installed with the package");
    if (has("cc") || has("gcc"))
      assert.ok(existsSync(join(installed, "native", "build", "Release", "tvs_native.node")), "native addon not built");

    for (const name of ["tvsd", "tvs"]) {
      const v = run(bin(name), ["--version"]);
      assert.equal(v.status, 0, v.text);
      assert.equal(v.out, `${name} ${pkg.version}\n`);
    }
    const admVersion = run(bin("tvsadm"), ["--version"]);
    assert.equal(admVersion.status, 0, admVersion.text);
    assert.match(admVersion.out, /^ipvsadm v1\.31 /);
    const checked = run(bin("tvs"), ["check-config", join(installed, "packaging", "etc", "tvs", "keepalived.conf")]);
    assert.equal(checked.status, 0, checked.text);
    assert.match(checked.out, /configuration OK: 1 virtual service\(s\), 2 real server\(s\)/);

    // --- tvsd --demo from the installed bin, in a namespace of its own.
    const ns = `tpkg${randomBytes(3).toString("hex")}`;
    execFileSync("ip", ["netns", "add", ns]);
    t.after(() => spawnSync("ip", ["netns", "del", ns]));
    execFileSync("ip", ["-n", ns, "link", "set", "lo", "up"]);
    const socket = join(dir, "control.sock");
    const env = { ...process.env, TVS_SOCKET: socket };
    let log = "";
    const tvsd: ChildProcess = spawn("ip", ["netns", "exec", ns, bin("tvsd"), "--demo", "--http", "none"], {
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    tvsd.stdout?.on("data", (c: Buffer) => (log += c.toString()));
    tvsd.stderr?.on("data", (c: Buffer) => (log += c.toString()));
    const exited = new Promise<number | null>((r) => tvsd.once("exit", (code) => r(code)));
    t.after(async () => {
      if (tvsd.exitCode === null && tvsd.signalCode === null) tvsd.kill("SIGKILL");
      await exited;
    });
    await waitFor("tvsd --demo to be ready", () => (log.includes('"tvsd ready"') ? true : undefined));

    const list = run("ip", ["netns", "exec", ns, bin("tvsadm"), "-L", "-n"], { env });
    assert.equal(list.status, 0, list.text);
    assert.match(list.out, /^IP Virtual Server version 1\.2\.1/);
    assert.match(list.out, /TCP {2}127\.0\.0\.1:8080 rr\n/);
    assert.match(list.out, /-> 127\.0\.0\.1:8081 +Masq +1 +0 +0/);
    assert.match(list.out, /-> 127\.0\.0\.1:8082 +Masq +1 +0 +0/);
    const answers = [1, 2, 3, 4].map(
      () =>
        run("ip", ["netns", "exec", ns, process.execPath, "-e", NODE_GET], { timeout: 15_000 }).out.trim() || "(none)",
    );
    const servers = answers.map((a) => /^Hello from (rs\d) /.exec(a)?.[1] ?? a);
    assert.deepEqual([...new Set(servers)].sort(), ["rs1", "rs2"], `answers: ${answers.join(", ")}\n${log}`);
    const status = run("ip", ["netns", "exec", ns, bin("tvs"), "status"], { env });
    assert.equal(status.status, 0, status.text);
    assert.match(status.out, /Data plane: proxy/);

    tvsd.kill("SIGTERM");
    assert.equal(await exited, 0, log);

    // --- the man pages: each renders without warnings, and man finds them through the prefix.
    for (const page of ["tvsd", "tvsadm", "tvs"]) {
      const shown = run("man", ["--warnings", "-l", join(installed, "man", `${page}.8`)], {
        env: { ...process.env, MANWIDTH: "80", MAN_KEEP_FORMATTING: "0" },
      });
      assert.equal(shown.status, 0, shown.text);
      assert.match(shown.out, new RegExp(`^${page.toUpperCase()}\\(8\\)`, "m"));
      assert.equal(shown.err, "", `man -l ${page}.8 warned:\n${shown.err}`);
      const found = run("man", ["-w", page], { env: { ...process.env, MANPATH: join(prefix, "share", "man") } });
      assert.equal(found.status, 0, found.text);
      assert.match(found.out, new RegExp(`/${page}\\.8\n$`));
      assert.ok(existsSync(join(prefix, "share", "man", "man8", `${page}.8`)), `${page}.8 not linked into the prefix`);
    }

    // --- the unit, with the installed commands named in it.
    const unitText = readFileSync(join(installed, "packaging", "systemd", "tvsd.service"), "utf8");
    assert.match(unitText, /^ExecStartPre=tvs check-config \$\{TVSD_CONFIG\}$/m);
    assert.match(unitText, /^ExecReload=kill -HUP \$MAINPID$/m);
    assert.match(unitText, /^Restart=on-failure$/m);
    assert.match(unitText, /^EnvironmentFile=\/etc\/tvs\/tvsd\.env$/m);
    assert.match(unitText, /^CapabilityBoundingSet=CAP_NET_RAW CAP_NET_ADMIN$/m);
    assert.match(unitText, /^AmbientCapabilities=CAP_NET_RAW CAP_NET_ADMIN$/m);
    if (has("systemd-analyze")) {
      const units = join(dir, "units");
      mkdirSync(units);
      writeFileSync(
        join(units, "tvsd.service"),
        unitText
          .replace("ExecStartPre=tvs ", `ExecStartPre=${bin("tvs")} `)
          .replace("ExecStart=tvsd ", `ExecStart=${bin("tvsd")} `),
      );
      const verify = run("systemd-analyze", ["verify", join(units, "tvsd.service")], {
        env: { ...process.env, MANPATH: join(prefix, "share", "man") },
      });
      assert.equal(verify.status, 0, verify.text);
      assert.equal(verify.text.trim(), "");
    } else {
      t.diagnostic("systemd-analyze is not installed: the unit was checked by its lines only");
    }

    // --- without the native addon: the CLI, the checker and the socket plane work; packet says why.
    const prefix2 = join(dir, "prefix-nonative");
    installInto(prefix2, tarball, join(dir, "clean2"), { TVS_SKIP_NATIVE: "1" });
    const installed2 = join(prefix2, "lib", "node_modules", "tvs");
    assert.ok(!existsSync(join(installed2, "native", "build")), "the native addon was built anyway");
    const bin2 = (name: string) => join(prefix2, "bin", name);
    const checked2 = run(bin2("tvs"), ["check-config", join(installed2, "packaging", "etc", "tvs", "keepalived.conf")]);
    assert.equal(checked2.status, 0, checked2.text);
    const socket2 = join(dir, "control2.sock");
    const packet = run(
      bin2("tvsd"),
      ["--socket", socket2, "--http", "none", "--dataplane", "packet", "--interface", "lo"],
      {
        timeout: 30_000,
      },
    );
    assert.equal(packet.status, 1, packet.text);
    assert.match(packet.text, /native addon is not built .*npm run build:native.*--dataplane proxy/);
    const adm2 = run(bin2("tvsadm"), ["--socket", socket2, "-L", "-n"]);
    assert.equal(adm2.status, 2);
    assert.match(adm2.err, /Are you sure that tvsd is running/);
  },
);

/** One HTTP GET to the demo VIP; prints the body (the real server's name). */
const NODE_GET = `require("http").get("http://127.0.0.1:8080/",r=>{let b="";r.on("data",c=>b+=c);r.on("end",()=>console.log(b.trim()))}).on("error",e=>console.log("error "+e.code))`;
