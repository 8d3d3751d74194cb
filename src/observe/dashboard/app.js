const WINDOW = 300; // points kept in the charts (five minutes at one a second)
const MAX_EVENTS = 200;
const $ = (sel) => document.querySelector(sel);

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

function num(n) {
  if (!Number.isFinite(n)) return "–";
  const a = Math.abs(n);
  if (a >= 1e9) return `${(n / 1e9).toFixed(1)}G`;
  if (a >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (a >= 1e4) return `${(n / 1e3).toFixed(1)}K`;
  return a >= 100 || Number.isInteger(n) ? String(Math.round(n)) : n.toFixed(1);
}
function bytes(n) {
  if (!Number.isFinite(n)) return "–";
  const u = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (Math.abs(n) >= 1000 && i < u.length - 1) {
    n /= 1000;
    i++;
  }
  return `${i === 0 ? Math.round(n) : n.toFixed(1)} ${u[i]}`;
}
function ago(ms) {
  if (ms === undefined) return "";
  if (ms < 1000) return `${(ms / 1000).toFixed(1)} s ago`;
  if (ms < 120000) return `${Math.round(ms / 1000)} s ago`;
  return `${Math.round(ms / 60000)} min ago`;
}
function uptime(ms) {
  const s = Math.floor(ms / 1000);
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  return d ? `${d}d ${h}h` : h ? `${h}h ${m}m` : `${m}m ${s % 60}s`;
}

// ---- charts ----
const css = getComputedStyle(document.documentElement);
const COLORS = { conns: "#2f6fde", inB: "#1a7f37", outB: "#d97706" };

function makeChart(container, height, series) {
  const width = Math.max(200, container.clientWidth || 300);
  const opts = {
    width,
    height,
    legend: { show: height > 100 },
    cursor: { show: height > 100 },
    scales: {
      x: { time: true },
      y: { auto: true, range: (_u, _lo, hi) => [0, Math.max(1, hi * 1.1)] },
      b: { auto: true, range: (_u, _lo, hi) => [0, Math.max(1, hi * 1.1)] },
    },
    axes: [
      { stroke: css.getPropertyValue("--muted"), grid: { stroke: css.getPropertyValue("--line") }, show: height > 100 },
      {
        stroke: css.getPropertyValue("--muted"),
        grid: { stroke: css.getPropertyValue("--line") },
        values: (_u, v) => v.map(num),
        size: 50,
        show: height > 100,
      },
      {
        scale: "b",
        side: 1,
        stroke: css.getPropertyValue("--muted"),
        grid: { show: false },
        values: (_u, v) => v.map(bytes),
        size: 70,
        show: height > 100,
      },
    ],
    series: [{}, ...series.map((s) => ({ points: { show: height > 100 }, ...s }))],
  };
  const data = [[], ...series.map(() => [])];
  const u = new uPlot(opts, data, container);
  return { u, data, container };
}

function pushPoint(chart, t, values) {
  const d = chart.data;
  d[0].push(t / 1000);
  for (const [i, v] of values.entries()) d[i + 1].push(v);
  if (d[0].length > WINDOW) for (const a of d) a.shift();
  chart.u.setData(d);
  chart.container.dataset.points = String(d[0].length);
  chart.container.dataset.lastT = String(t);
  chart.container.dataset.maxCps = String(Math.max(0, ...d[1]));
}

const totalSeries = [
  { label: "conn/s", stroke: COLORS.conns, width: 2, value: (_u, v) => num(v) },
  { label: "in B/s", stroke: COLORS.inB, scale: "b", value: (_u, v) => bytes(v) },
  { label: "out B/s", stroke: COLORS.outB, scale: "b", value: (_u, v) => bytes(v) },
];
let totalChart;
const svcCharts = new Map(); // service id → chart
let history = [];

function svcSeries() {
  return [
    { label: "conn/s", stroke: COLORS.conns, width: 1.5 },
    { label: "B/s", stroke: COLORS.outB, scale: "b" },
  ];
}

// ---- rendering ----
function renderSummary(f) {
  const items = [
    ["data plane", f.dataplane + (f.workers > 1 ? ` ×${f.workers}` : "")],
    ["up", uptime(f.uptimeMs)],
    ["services", String(f.services.length)],
    ["active", num(f.totals.active)],
    ["inactive", num(f.totals.inactive)],
    ["conn/s", num(f.totals.rates.cps)],
    ["in", `${bytes(f.totals.rates.inBps)}/s`],
    ["out", `${bytes(f.totals.rates.outBps)}/s`],
    ["conn table", `${num(f.connTable.entries)} / ${num(f.connTable.limit)}`],
  ];
  if (f.connTable.refused) items.push(["refused", num(f.connTable.refused)]);
  if (f.config) items.push(["config", f.config]);
  $("#summary").replaceChildren(...items.map(([k, v]) => el("div", {}, el("dt", { text: k }), el("dd", { text: v }))));
}

function renderHa(f) {
  const vrrp = $("#vrrp");
  if (!f.vrrp.length) vrrp.replaceChildren(el("p", { class: "muted", text: "No VRRP instance" }));
  else
    vrrp.replaceChildren(
      ...f.vrrp.map((v) =>
        el(
          "div",
          { class: "ha-item", "data-vrrp": v.name },
          el("span", { class: `badge ${v.state}`, text: v.state }),
          el("strong", { text: v.name }),
          el("span", {
            class: "muted",
            text: `${v.interface} vrid ${v.vrid} prio ${v.effectivePriority ?? v.priority} · ${v.addresses.join(", ")}`,
          }),
        ),
      ),
    );
  const sync = $("#sync");
  const items = [];
  for (const s of f.sync)
    items.push(
      el(
        "div",
        { class: "ha-item" },
        el("span", { class: `badge ${s.state === "running" ? "up" : "unknown"}`, text: `${s.role} ${s.state}` }),
        el("span", {
          class: "muted",
          text: `syncid ${s.syncId} on ${s.interface} · sent ${num(s.messagesSent)} msgs / ${num(s.connectionsSent)} conns · received ${num(s.messagesReceived)} / ${num(s.connectionsReceived)}${s.lastMessageAgoMs !== undefined ? ` · last ${ago(s.lastMessageAgoMs)}` : ""}`,
        }),
      ),
    );
  if (!f.sync.length)
    for (const d of f.daemons)
      items.push(
        el(
          "div",
          { class: "ha-item" },
          el("span", { class: "badge up", text: d.state }),
          el("span", { class: "muted", text: `syncid ${d.syncId} on ${d.mcastIfn}` }),
        ),
      );
  sync.replaceChildren(...(items.length ? items : [el("p", { class: "muted", text: "No sync daemon" })]));
}

function healthCell(h) {
  if (!h) return el("td", { class: "health" }, el("span", { class: "muted", text: "no check" }));
  const detail = [h.checker, h.lastResult === "none" ? "not checked yet" : h.lastResult];
  if (h.latencyMs !== undefined)
    detail.push(`${h.latencyMs < 10 ? h.latencyMs.toFixed(1) : Math.round(h.latencyMs)} ms`);
  if (h.lastCheckAgoMs !== undefined) detail.push(ago(h.lastCheckAgoMs));
  const td = el(
    "td",
    { class: "health", title: h.reason },
    el("span", { class: `badge ${h.state}`, "data-health": h.state, text: h.state }),
    el("span", { class: "check", text: detail.join(" · ") }),
  );
  return td;
}

function renderServices(f) {
  const root = $("#services");
  $("#svc-count").textContent = `(${f.services.length})`;
  const seen = new Set();
  let prev = null;
  for (const s of f.services) {
    seen.add(s.id);
    let card = root.querySelector(`[data-service="${CSS.escape(s.id)}"]`);
    if (!card) {
      card = el(
        "article",
        { class: "card svc", "data-service": s.id },
        el("div", { class: "svc-head" }, el("h3", { text: s.id }), el("span", { class: "stat" })),
        el(
          "div",
          { class: "svc-body" },
          el("div", { class: "chart small" }),
          el(
            "div",
            { class: "table-wrap" },
            el(
              "table",
              {},
              el(
                "thead",
                {},
                el(
                  "tr",
                  {},
                  ...["Real server", "Health", "Weight", "Active", "Inactive", "Conn/s", "Fwd"].map((h) =>
                    el("th", { text: h }),
                  ),
                ),
              ),
              el("tbody"),
            ),
          ),
        ),
      );
      root.insertBefore(card, prev ? prev.nextSibling : root.firstChild);
    } else if (card.previousElementSibling !== prev) root.insertBefore(card, prev ? prev.nextSibling : root.firstChild);
    prev = card;
    card.querySelector(".stat").textContent =
      `${s.scheduler}${s.persistent ? ` persistent ${s.persistent}s` : ""} · ${num(s.active)} active · ${num(s.inactive)} inactive · ${num(s.rates.cps)} conn/s · ${bytes(s.rates.inBps + s.rates.outBps)}/s`;
    card
      .querySelector("tbody")
      .replaceChildren(
        ...s.dests.map((d) =>
          el(
            "tr",
            { "data-dest": d.dest, class: d.health && d.health.state === "down" ? "is-down" : "" },
            el("td", { text: d.dest }),
            healthCell(d.health),
            el("td", { text: String(d.weight) }),
            el("td", { text: num(d.active) }),
            el("td", { text: num(d.inactive) }),
            el("td", { text: num(d.cps) }),
            el("td", { text: d.fwd || "out of table", class: d.fwd ? "" : "muted" }),
          ),
        ),
      );
    const chartBox = card.querySelector(".chart");
    if (!svcCharts.has(s.id) && svcCharts.size < 50) {
      const c = makeChart(chartBox, 56, svcSeries());
      for (const h of history) if (h.svc[s.id]) pushPoint(c, h.t, h.svc[s.id]);
      svcCharts.set(s.id, c);
    }
    const c = svcCharts.get(s.id);
    if (c) pushPoint(c, f.t, [s.rates.cps, s.rates.inBps + s.rates.outBps]);
  }
  for (const card of [...root.children]) {
    const id = card.dataset.service;
    if (!seen.has(id)) {
      svcCharts.get(id)?.u.destroy();
      svcCharts.delete(id);
      card.remove();
    }
  }
  if (!f.services.length && !root.querySelector(".muted"))
    root.append(el("p", { class: "muted", text: "No virtual services" }));
  else if (f.services.length) root.querySelector(":scope > .muted")?.remove();
}

function onFrame(f) {
  renderSummary(f);
  renderHa(f);
  renderServices(f);
  if (!totalChart) {
    totalChart = makeChart($("#total-chart"), 180, totalSeries);
    for (const h of history) pushPoint(totalChart, h.t, [h.total.cps, h.total.inBps, h.total.outBps]);
  }
  pushPoint(totalChart, f.t, [f.totals.rates.cps, f.totals.rates.inBps, f.totals.rates.outBps]);
}

// ---- events ----
function addEvent(e) {
  const list = $("#events");
  if (list.querySelector(`[data-seq="${e.seq}"]`)) return;
  const t = new Date(e.time);
  const li = el(
    "li",
    { class: e.type, "data-seq": String(e.seq), "data-type": e.type },
    el("time", { datetime: e.time, text: t.toLocaleTimeString() }),
    e.message,
  );
  list.prepend(li);
  while (list.children.length > MAX_EVENTS) list.lastElementChild.remove();
}

// ---- streams ----
function status(text, cls) {
  const b = $("#conn");
  b.textContent = text;
  b.className = `badge ${cls}`;
}

const stream = new EventSource("/dashboard/stream");
stream.addEventListener("open", () => status("live", "live"));
stream.addEventListener("error", () => status("reconnecting", "lost"));
stream.addEventListener("history", (m) => {
  history = JSON.parse(m.data);
});
stream.addEventListener("state", (m) => onFrame(JSON.parse(m.data)));

const events = new EventSource("/events");
const EVENT_TYPES = [
  "dest-down",
  "dest-up",
  "quorum-lost",
  "quorum-gained",
  "reload",
  "reload-refused",
  "service-added",
  "service-removed",
  "vrrp-state",
  "sync-state",
];
for (const type of EVENT_TYPES) events.addEventListener(type, (m) => addEvent(JSON.parse(m.data)));

window.addEventListener("resize", () => {
  for (const c of [totalChart, ...svcCharts.values()])
    if (c) c.u.setSize({ width: Math.max(200, c.container.clientWidth), height: c.u.height });
});
