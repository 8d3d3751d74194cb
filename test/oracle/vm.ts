// Client for the kernel-IPVS oracle: one persistent qemu microvm (Debian's 6.1 kernel with ip_vs and
// the real ipvsadm 1.31, built by tools/ipvs-oracle/build.sh) answering shell commands over its serial
// console. The guest's /init (tools/ipvs-oracle/init) reads "<id> <script as a printf format>" lines
// and answers with stdout, stderr and the exit code between "@@TVSO-…" markers; commands run one at
// a time, in order. Boot and every command have bounded timeouts; a timeout kills the VM (by PID).

import { type ChildProcessWithoutNullStreams, spawn, spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export interface VmResult {
  stdout: string;
  stderr: string;
  code: number;
}

export interface BootOptions {
  /** Run tools/ipvs-oracle/build.sh first (idempotent, quick when up to date). Default true. */
  build?: boolean;
  bootTimeoutMs?: number;
  memoryMb?: number;
  /**
   * A network link to the host: qemu runs in this network namespace and attaches the existing tap
   * device there to the guest as a virtio-net (virtio-mmio) device, the guest's eth0. Without it the
   * VM has no network device at all. See host-link.ts.
   */
  link?: { netns: string; tap: string };
}

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const oracleCache = process.env.IPVS_ORACLE_CACHE ?? join(repoRoot, ".cache", "ipvs-oracle");

/** Single-quote a word for the guest's sh. */
export function shq(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}

/** The script as a printf format for the guest's builtin printf: every byte outside a safe set as \ooo. */
export function printfFormat(script: string): string {
  let s = "";
  for (const b of Buffer.from(script, "utf8")) {
    const c = String.fromCharCode(b);
    s += /[A-Za-z0-9 ,.:/=_+@-]/.test(c) ? c : `\\${b.toString(8).padStart(3, "0")}`;
  }
  return s;
}

/** The host's TSC frequency in kHz: microvm under TCG cannot calibrate it, so the kernel is told. */
function tscKhz(): number {
  try {
    const m = /cpu MHz\s*:\s*([0-9.]+)/.exec(readFileSync("/proc/cpuinfo", "utf8"));
    if (m?.[1]) return Math.round(Number(m[1]) * 1000);
  } catch {}
  return 2_500_000;
}

interface Pending {
  id: string;
  script: string;
  resolve: (r: VmResult) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
  phase: "wait" | "out" | "err";
  out: string[];
  err: string[];
}

export class KernelVm {
  readonly pid: number;
  readonly kernelRelease: string;
  /** Milliseconds from spawning qemu to the guest's READY line. */
  readonly bootMs: number;
  #proc: ChildProcessWithoutNullStreams;
  #buf = "";
  #pending: Pending[] = [];
  #seq = 0;
  #dead: Error | undefined;
  #log: string[] = [];

  private constructor(proc: ChildProcessWithoutNullStreams, kernelRelease: string, bootMs: number) {
    this.#proc = proc;
    this.pid = proc.pid ?? -1;
    this.kernelRelease = kernelRelease;
    this.bootMs = bootMs;
  }

  /** Builds (if asked) and boots the VM; resolves when the guest's command loop is ready. */
  static async boot(opts: BootOptions = {}): Promise<KernelVm> {
    if (opts.build ?? true) {
      const b = spawnSync(join(repoRoot, "tools", "ipvs-oracle", "build.sh"), [], {
        encoding: "utf8",
        timeout: 600_000,
      });
      if (b.status !== 0) {
        throw new Error(
          `Building the IPVS oracle VM failed (tools/ipvs-oracle/build.sh exit ${b.status}): ${b.stderr}`,
        );
      }
    }
    const kernel = join(oracleCache, "vmlinuz");
    const initrd = join(oracleCache, "initramfs.cpio.gz");
    for (const f of [kernel, initrd]) {
      if (!existsSync(f)) throw new Error(`IPVS oracle image "${f}" is missing: run tools/ipvs-oracle/build.sh`);
    }
    const qemuBin = process.env.IPVS_ORACLE_QEMU ?? "qemu-system-x86_64";
    const link = opts.link;
    const nic = link
      ? [
          ...["-netdev", `tap,id=n0,ifname=${link.tap},script=no,downscript=no`],
          ...["-device", "virtio-net-device,netdev=n0,mac=52:54:00:7e:50:02"],
        ]
      : ["-nic", "none"];
    // With a link, `ip netns exec` execs qemu in the namespace (same PID, so kill-by-PID still holds).
    const qemu = link ? "ip" : qemuBin;
    const args = [
      ...(link ? ["netns", "exec", link.netns, qemuBin] : []),
      ...["-M", "microvm", "-accel", "tcg", "-cpu", "max", "-smp", "1", "-m", `${opts.memoryMb ?? 256}M`],
      ...nic,
      ...["-nodefaults", "-no-user-config", "-display", "none", "-no-reboot"],
      ...["-chardev", "stdio,id=c0,signal=off", "-serial", "chardev:c0"],
      ...["-kernel", kernel, "-initrd", initrd],
      ...["-append", `console=ttyS0 quiet loglevel=0 panic=-1 tsc_early_khz=${tscKhz()}${link ? " tvso_net=1" : ""}`],
    ];
    const started = Date.now();
    const proc = spawn(qemu, args, { stdio: ["pipe", "pipe", "pipe"] });
    // qemu does not stop when our end of its stdio closes: if this process exits without close(),
    // kill the VM we started (by its PID) so it cannot linger.
    const killOnExit = () => proc.kill("SIGKILL");
    process.once("exit", killOnExit);
    proc.once("exit", () => process.off("exit", killOnExit));
    const timeoutMs = opts.bootTimeoutMs ?? 120_000;
    const release = await new Promise<string>((resolve, reject) => {
      let acc = "";
      let errText = "";
      const fail = (why: string) => {
        cleanup();
        proc.kill("SIGKILL");
        reject(new Error(`IPVS oracle VM did not boot: ${why}; console tail: ${JSON.stringify(acc.slice(-800))}`));
      };
      const onData = (d: Buffer) => {
        acc += d.toString("latin1");
        const m = /@@TVSO-READY (\S+)\r?\n/.exec(acc);
        if (m) {
          cleanup();
          resolve(m[1] ?? "");
        } else if (acc.includes("@@TVSO-FATAL")) fail("the guest could not load ip_vs");
      };
      const onErr = (d: Buffer) => {
        errText += d.toString();
      };
      const onExit = (code: number | null) => fail(`qemu exited (${code}) ${errText.trim()}`);
      const onSpawnError = (e: Error) => fail(`cannot start "${qemu}" (${e.message}); install qemu-system-x86`);
      const timer = setTimeout(() => fail(`no READY within ${timeoutMs} ms`), timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        proc.stdout.off("data", onData);
        proc.stderr.off("data", onErr);
        proc.off("exit", onExit);
        proc.off("error", onSpawnError);
      };
      proc.stdout.on("data", onData);
      proc.stderr.on("data", onErr);
      proc.on("exit", onExit);
      proc.on("error", onSpawnError);
    });
    const vm = new KernelVm(proc, release, Date.now() - started);
    proc.stdout.on("data", (d: Buffer) => vm.#onData(d));
    proc.stderr.on("data", (d: Buffer) => vm.#logLine(`qemu: ${d.toString().trim()}`));
    proc.on("exit", (code, sig) => vm.#die(new Error(`IPVS oracle VM exited (code ${code}, signal ${sig})`)));
    return vm;
  }

  /**
   * Runs a shell script in the guest (sh, stdin /dev/null); resolves with its output and exit code.
   * Commands are sent at once and answered in order (the guest runs them one after another), so
   * callers may issue many without waiting; the timeout counts from sending.
   */
  run(script: string, opts: { timeoutMs?: number } = {}): Promise<VmResult> {
    if (this.#dead) return Promise.reject(this.#dead);
    const timeoutMs = opts.timeoutMs ?? 120_000;
    return new Promise<VmResult>((resolve, reject) => {
      const id = `c${++this.#seq}`;
      const timer = setTimeout(() => {
        const e = new Error(`IPVS oracle VM: command ${JSON.stringify(script)} gave no answer within ${timeoutMs} ms`);
        this.#die(e);
        this.#proc.kill("SIGKILL");
      }, timeoutMs);
      this.#pending.push({ id, script, resolve, reject, timer, phase: "wait", out: [], err: [] });
      this.#proc.stdin.write(`${id} ${printfFormat(script)}\n`);
    });
  }

  /** Runs `ipvsadm` with these arguments (each one shell-quoted). */
  ipvsadm(args: readonly string[], opts: { stdin?: string; timeoutMs?: number } = {}): Promise<VmResult> {
    const cmd = ["ipvsadm", ...args].map(shq).join(" ");
    const script = opts.stdin === undefined ? cmd : `printf '%s' ${shq(opts.stdin)} | ${cmd}`;
    return this.run(script, opts.timeoutMs === undefined ? {} : { timeoutMs: opts.timeoutMs });
  }

  /** Clears every service and restores the default timeouts and no sync daemons. */
  async reset(): Promise<void> {
    await this.run(
      "ipvsadm -C; ipvsadm --stop-daemon master; ipvsadm --stop-daemon backup; ipvsadm --set 900 120 300; true",
    );
  }

  /** Last console lines that were not protocol output (for diagnosing a failure). */
  get log(): readonly string[] {
    return this.#log;
  }

  /** Asks the guest to power off; kills qemu by PID if it has not exited within 5 s. */
  async close(): Promise<void> {
    if (this.#proc.exitCode !== null || this.#proc.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.#proc.once("exit", () => resolve()));
    try {
      this.#proc.stdin.write("@@TVSO-QUIT\n");
      this.#proc.stdin.end();
    } catch {}
    const timer = setTimeout(() => this.#proc.kill("SIGKILL"), 5_000);
    await exited;
    clearTimeout(timer);
  }

  #onData(d: Buffer): void {
    this.#buf += d.toString("latin1");
    let nl = this.#buf.indexOf("\n");
    while (nl >= 0) {
      const line = this.#buf.slice(0, nl);
      this.#buf = this.#buf.slice(nl + 1);
      this.#onLine(line);
      nl = this.#buf.indexOf("\n");
    }
  }

  #onLine(raw: string): void {
    const line = raw.replace(/\r$/, "");
    const p = this.#pending[0];
    if (!p) {
      this.#logLine(line);
      return;
    }
    if (line === `@@TVSO-OUT ${p.id}`) p.phase = "out";
    else if (line === `@@TVSO-ERR ${p.id}`) p.phase = "err";
    else if (line.startsWith(`@@TVSO-END ${p.id} `)) {
      clearTimeout(p.timer);
      this.#pending.shift();
      p.resolve({
        stdout: Buffer.from(p.out.join("\n"), "latin1").toString("utf8"),
        stderr: Buffer.from(p.err.join("\n"), "latin1").toString("utf8"),
        code: Number(line.slice(`@@TVSO-END ${p.id} `.length)),
      });
    } else if (p.phase === "out") p.out.push(raw);
    else if (p.phase === "err") p.err.push(raw);
    else this.#logLine(line);
  }

  #logLine(line: string): void {
    this.#log.push(line);
    if (this.#log.length > 200) this.#log.shift();
  }

  #die(e: Error): void {
    if (this.#dead) return;
    this.#dead = e;
    for (const p of this.#pending.splice(0)) {
      clearTimeout(p.timer);
      p.reject(e);
    }
  }
}
