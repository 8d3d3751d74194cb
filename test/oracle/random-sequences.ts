// Random ipvsadm sequences from a seeded generator, for the differential CLI suite. Services and
// servers come from small pools so commands collide (exists / no such service / no such
// destination); options are drawn from valid values and from values just outside their ranges or
// not numbers at all, so both the parser's and the kernel's error paths are exercised. The same
// seed always gives the same sequences.

import { mulberry32 as rng } from "../../src/core/seeded-random.ts";
import type { Case, Step } from "./cases.ts";

export function generateSequences(seed: number, count: number, length: number): Case[] {
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)] as T;
  const chance = (p: number) => r() < p;

  const services = [
    ["-t", "10.0.0.1:80"],
    ["-t", "10.0.0.2:443"],
    ["-u", "10.0.0.1:53"],
    ["-t", "[2001:db8::1]:80"],
    ["-f", "5"],
    ["-f", "6", "-6"],
    ["--sctp-service", "10.0.0.3:3868"],
    ["-t", "10.0.0.1:0"],
  ] as const;
  const v4servers = ["10.1.0.1", "10.1.0.2:8080", "10.1.0.3:80", "10.1.0.4:0"];
  const v6servers = ["[2001:db8::a]:80", "[2001:db8::b]"];
  const scheds = ["rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "bogus"];
  const weights = ["0", "1", "3", "100", "65535", "65536", "-1", "x", "2147483647"];
  const thresholds = ["0", "5", "100", "65535", "65536", "-2", "y"];
  const persist = ["", "1", "60", "300", "0", "2678400", "2678401", "z"];
  const masks4 = ["255.255.255.0", "255.255.0.0", "24", "255.0.255.0", "bad"];
  const fwd = ["-g", "-m", "-i"];
  const flags = ["sh-port", "sh-fallback", "mh-port", "mh-fallback", "sh-fallback,sh-port", "nope"];
  const lists = [
    ["-L", "-n"],
    ["-L", "-n", "--stats"],
    ["-L", "-n", "--rate"],
    ["-L", "-n", "--thresholds"],
    ["-L", "-n", "--persistent-conn"],
    ["-L", "-n", "--tun-info"],
    ["-L", "-n", "--timeout"],
    ["-L", "-n", "-c"],
    ["-L"],
    ["-S", "-n"],
    ["-S"],
    ["-L", "-n", "--exact", "--stats"],
  ];

  const svc = () => {
    const s = pick(services);
    return [...s];
  };
  const server = (s: readonly string[]) =>
    s.includes("[2001:db8::1]:80") || s.includes("-6") ? pick(v6servers) : pick(v4servers);

  const serviceOptions = (): string[] => {
    const o: string[] = [];
    if (chance(0.7)) o.push("-s", pick(scheds));
    if (chance(0.3)) {
      const p = pick(persist);
      o.push("-p");
      if (p) o.push(p);
      if (chance(0.3)) o.push("-M", pick(masks4));
    }
    if (chance(0.15)) o.push("-b", pick(flags));
    if (chance(0.1)) o.push("-o");
    if (chance(0.05)) o.push(pick(["-w", "-x", "-r", "-m"]), "1");
    return o;
  };
  const serverOptions = (): string[] => {
    const o: string[] = [];
    if (chance(0.8)) o.push(pick(fwd));
    if (chance(0.6)) o.push("-w", pick(weights));
    if (chance(0.2)) o.push("-x", pick(thresholds));
    if (chance(0.2)) o.push("-y", pick(thresholds));
    if (chance(0.08)) o.push("--tun-type", pick(["ipip", "gue", "gre", "vxlan"]));
    if (chance(0.05)) o.push("--tun-port", pick(["6080", "0", "70000"]));
    if (chance(0.05)) o.push("-s", "rr");
    return o;
  };

  const command = (): string[] => {
    const k = r();
    if (k < 0.22) return ["-A", ...svc(), ...serviceOptions()];
    if (k < 0.3) return ["-E", ...svc(), ...serviceOptions()];
    if (k < 0.36) return ["-D", ...svc()];
    if (k < 0.58) {
      const s = svc();
      return ["-a", ...s, "-r", server(s), ...serverOptions()];
    }
    if (k < 0.66) {
      const s = svc();
      return ["-e", ...s, "-r", server(s), ...serverOptions()];
    }
    if (k < 0.72) {
      const s = svc();
      return ["-d", ...s, "-r", server(s)];
    }
    if (k < 0.86) {
      const l = pick(lists);
      return chance(0.2) ? [...l, ...svc()] : [...l];
    }
    if (k < 0.9) return ["-Z", ...(chance(0.5) ? svc() : [])];
    if (k < 0.94) return ["--set", pick(["0", "10", "900"]), pick(["0", "5", "x"]), pick(["0", "300", "-1"])];
    if (k < 0.96) return ["-C"];
    return [pick(["-X", "--bogus", "-A", "-a", "-L", "-E"])];
  };

  const out: Case[] = [];
  for (let i = 0; i < count; i++) {
    const steps: Step[] = [];
    for (let j = 0; j < length; j++) steps.push({ kind: "run", args: command() });
    steps.push({ kind: "run", args: ["-L", "-n"] });
    out.push({
      name: `random-${seed}-${i}`,
      comment: `seeded random sequence ${i} (seed ${seed})`,
      steps,
      unreproducible: [],
    });
  }
  return out;
}
