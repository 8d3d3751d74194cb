// The client side of `tvs lab synflood`, as plain JavaScript for `node -e` inside the client's
// namespace: a rate-capped long download through the VIP, a new legitimate connection every 10 ms
// (an HTTP request; success = the real server's name came back within 3 s), and, between
// `before` and `before + flood` ms, Debian's hping3 sending spoofed-source SYNs (--rand-source) at
// the VIP (under timeout(1), so it cannot outlive the run). Prints one JSON line: per phase (before, during, after) the legitimate attempts and
// successes and the download's bytes, whether the download was cut, and hping3's own count.

export const SYNFLOOD_DRIVER_JS = `
const [vip, port, beforeMs, floodMs, afterMs, dlRate, rate] = process.argv.slice(1);
const net = require("node:net");
const { spawn } = require("node:child_process");
const B = Number(beforeMs), F = Number(floodMs), A = Number(afterMs), R = Number(dlRate);
const END = B + F + A;
const t0 = Date.now();
const now = () => Date.now() - t0;
const phase = (t) => (t < B ? "before" : t < B + F ? "during" : "after");
const legit = { before: { tried: 0, ok: 0, maxMs: 0 }, during: { tried: 0, ok: 0, maxMs: 0 }, after: { tried: 0, ok: 0, maxMs: 0 } };
const dl = { before: 0, during: 0, after: 0, cut: false, error: "" };
let pending = 0;
// The download: GET /bulk/N, N large enough to outlast the run, read at most R bytes a second.
const size = Math.ceil((R * (END + 5000)) / 1000);
let got = 0;
const d = net.connect({ host: vip, port: Number(port) }, () => d.write("GET /bulk/" + size + " HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n"));
d.on("data", (c) => {
  const t = now();
  if (t < END) dl[phase(t)] += c.length;
  got += c.length;
  const ahead = got - (R * t) / 1000;
  if (ahead > 0) { d.pause(); setTimeout(() => d.resume(), Math.ceil((ahead * 1000) / R)); }
});
d.on("error", (e) => { dl.error = e.message; if (now() < END) dl.cut = true; });
d.on("close", () => { if (now() < END) dl.cut = true; });
// A legitimate client every 10 ms.
function attempt() {
  const start = now();
  if (start >= END) return;
  const p = legit[phase(start)];
  p.tried++;
  pending++;
  let done = false;
  const s = net.connect({ host: vip, port: Number(port) }, () => s.write("GET / HTTP/1.0\\r\\n\\r\\n"));
  const finish = (ok) => {
    if (done) return;
    done = true;
    pending--;
    if (ok) { p.ok++; p.maxMs = Math.max(p.maxMs, now() - start); }
    s.destroy();
  };
  s.on("data", (c) => { if (/rs\\d/.test(c.toString())) finish(true); });
  s.on("error", () => finish(false));
  s.on("close", () => finish(false));
  setTimeout(() => finish(false), 3000);
}
const tick = setInterval(attempt, 10);
// The flood.
let hping;
let hpingOut = "";
setTimeout(() => {
  const args = ["-q", "-S", "-p", port, "--rand-source"];
  if (rate === "flood") args.push("--flood"); else args.push("-i", "u" + Math.max(1, Math.round(1e6 / Number(rate))));
  args.push(vip);
  // Bounded twice: SIGINT at the end of the flood phase, and timeout(1) two seconds later whatever happens.
  hping = spawn("timeout", ["-s", "INT", "-k", "2", String(Math.ceil(F / 1000) + 2), "hping3", ...args], { stdio: ["ignore", "pipe", "pipe"] });
  hping.stdout.on("data", (c) => (hpingOut += c));
  hping.stderr.on("data", (c) => (hpingOut += c));
  hping.on("error", (e) => (hpingOut += "hping3: " + e.message));
}, B);
setTimeout(() => { if (hping && hping.exitCode === null) hping.kill("SIGINT"); }, B + F);
setTimeout(() => {
  clearInterval(tick);
  const wait = setInterval(() => {
    if (pending > 0 && now() < END + 4000) return;
    clearInterval(wait);
    const m = /(\\d+) packets transmitted/.exec(hpingOut);
    const survived = !dl.cut && dl.during > 0 && dl.after > 0;
    d.destroy();
    process.stdout.write(JSON.stringify({ legit, download: { ...dl, survived }, hping: { sent: m ? Number(m[1]) : -1, output: hpingOut.trim().slice(-300) } }) + "\\n");
    process.exit(0);
  }, 50);
}, END);
`;
