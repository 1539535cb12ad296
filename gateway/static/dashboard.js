// The satgw dashboard: polls the JSON API and redraws. No library, no build step.
// Every number shown is a field of the last answer, unchanged (ages to 0.1 s; raw value in data-value);
// rates are the only derived figures: counter deltas over the server's uptime delta.
"use strict";

const POLL_MS = 1500;
const WINDOW_S = 300;
const DEAD_LIMIT = 100;
const CLASSES = ["distress", "urgency", "safety", "routine"];
const SVG_NS = "http://www.w3.org/2000/svg";

const samples = [];  // {uptime, queues} of the last WINDOW_S seconds
let previous = null;  // the last status, for rates

function $(id) {
  return document.getElementById(id);
}

function age(value) {
  return value === null || value === undefined ? "–" : value.toFixed(1);
}

function cell(text, numeric, field, raw) {
  const td = document.createElement("td");
  td.textContent = text;
  if (numeric) td.className = "num";
  if (field) td.dataset.field = field;
  if (raw !== undefined) td.dataset.value = raw === null ? "" : String(raw);
  return td;
}

function row(cells, key) {
  const tr = document.createElement("tr");
  if (key) tr.dataset.key = key;
  tr.append(...cells);
  return tr;
}

function fill(tbody, rows, empty, columns) {
  if (rows.length === 0) rows = [row([cell(empty)])];
  if (rows.length === 1 && rows[0].children.length === 1) rows[0].firstChild.colSpan = columns;
  tbody.replaceChildren(...rows);
}

function setNumber(id, value, text) {
  const el = $(id);
  el.textContent = text === undefined ? String(value) : text;
  el.dataset.value = value === null ? "" : String(value);
}

function counter(counters, name) {
  return counters[name] || 0;
}

function rate(status, name) {
  if (!previous || status.uptime_s <= previous.uptime_s) return "–";
  const delta = counter(status.counters, name) - counter(previous.counters, name);
  return (delta / (status.uptime_s - previous.uptime_s)).toFixed(2);
}

function drawHeader(status) {
  $("node").textContent = status.node;
  $("version").textContent = status.version;
  setNumber("uptime", status.uptime_s);
  $("backlog").textContent = String(status.backlog);
  const now = new Date();
  $("updated").textContent = now.toLocaleTimeString();
  $("updated").dateTime = now.toISOString();
}

function drawOpenDistress(open) {
  const rows = open.map((m) => row([
    cell(m.terminal, false, "terminal"),
    cell(String(m.seq), true, "seq", m.seq),
    cell(age(m.age_s), true, "age_s", m.age_s),
    cell(m.taken ? "taken by a relay" : "waiting", false, "state"),
    cell(m.position ? `${m.position.lat}, ${m.position.lon}` : "none", false, "position"),
    cell(m.body === null ? "?" : m.body, false, "body"),
    cell(m.message_id, false, "message_id"),
  ], m.message_id));
  fill($("distress-open"), rows, "None.", 7);
}

function drawDistress(status, dead) {
  const q = status.queues.distress;
  const open = q.depth + q.pending;
  $("distress").dataset.open = open > 0 ? "1" : "0";
  $("distress-summary").textContent = open > 0
    ? `${open} distress message(s) not yet sent; the oldest is ${age(q.oldest_age_s)} s old.`
    : "No distress message is waiting.";
  setNumber("distress-depth", q.depth);
  setNumber("distress-pending", q.pending);
  setNumber("distress-age", q.oldest_age_s, age(q.oldest_age_s));
  for (const kind of ["accepted", "sent", "delivered"]) {
    setNumber(`distress-${kind}`, counter(status.counters, `${kind}.distress`));
  }
  const rows = dead.filter((d) => d.priority === "distress").map((d) => deadRow(d, false));
  fill($("distress-dead"), rows, "None.", 4);
}

function drawQueues(status) {
  const rows = Object.entries(status.queues).map(([name, q]) => row([
    cell(name),
    cell(String(q.depth), true, "depth", q.depth),
    cell(String(q.pending), true, "pending", q.pending),
    cell(age(q.oldest_age_s), true, "oldest_age_s", q.oldest_age_s),
  ], name));
  fill($("queues"), rows, "No queues.", 4);
}

function drawThroughput(status) {
  const rows = CLASSES.map((name) => row([
    cell(name),
    cell(String(counter(status.counters, `accepted.${name}`)), true, "accepted"),
    cell(rate(status, `accepted.${name}`), true, "accepted_rate"),
    cell(String(counter(status.counters, `delivered.${name}`)), true, "delivered"),
    cell(rate(status, `delivered.${name}`), true, "delivered_rate"),
  ], name));
  fill($("throughput"), rows, "", 5);
}

function drawRejected(status) {
  const rejected = Object.entries(status.counters)
    .filter(([name]) => name.startsWith("rejected."))
    .map(([name, n]) => [name.slice("rejected.".length), n])
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  const rows = rejected.map(([reason, n]) => row([cell(reason), cell(String(n), true, "count", n)], reason));
  fill($("rejected"), rows, "None.", 2);
}

function drawLinks(links) {
  const rows = links.map((link) => {
    const next = Object.entries(link.next_send_s).map(([k, v]) => `${k} ${v}`).join(", ");
    const sent = Object.entries(link.transmissions).map(([k, v]) => `${k} ${v}`).join(", ");
    return row([
      cell(link.name),
      cell(link.state, false, "state"),
      cell(link.paused ? "yes" : "no", false, "paused"),
      cell(String(link.in_flight), true, "in_flight", link.in_flight),
      cell(next, false, "next_send_s"),
      cell(sent || "none", false, "transmissions"),
    ], link.name);
  });
  fill($("links"), rows, "No links.", 6);
}

function deadRow(d, withClass) {
  const m = d.message;
  const cells = [cell(d.id)];
  if (withClass) cells.push(cell(d.priority));
  cells.push(cell(d.reason), cell(m ? m.terminal : "?"), cell(m ? String(m.seq) : "?", true));
  return row(cells, d.id);
}

function drawDead(dead) {
  $("dead-count").textContent = dead.length >= DEAD_LIMIT ? `${dead.length} or more` : String(dead.length);
  fill($("dead"), dead.map((d) => deadRow(d, true)), "None.", 5);
}

function svg(tag, attrs) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

function drawChart(id, value, unit) {
  const box = $(id);
  const [w, h, pad] = [400, 160, 24];
  const end = samples.length ? samples[samples.length - 1].uptime : 0;
  const values = samples.flatMap((s) => CLASSES.map((c) => value(s.queues[c]) || 0));
  const top = Math.max(1, ...values);
  const x = (t) => pad + ((t - (end - WINDOW_S)) / WINDOW_S) * (w - 2 * pad);
  const y = (v) => h - pad - (v / top) * (h - 2 * pad);
  const parts = [
    svg("line", { class: "axis", x1: pad, y1: h - pad, x2: w - pad, y2: h - pad }),
    svg("line", { class: "axis", x1: pad, y1: pad, x2: pad, y2: h - pad }),
  ];
  const label = (text, attrs) => {
    const t = svg("text", attrs);
    t.textContent = text;
    return t;
  };
  parts.push(label(`${Number(top.toFixed(1))}${unit}`, { x: pad + 4, y: pad - 8 }));
  parts.push(label(`-${WINDOW_S / 60} min`, { x: pad, y: h - 6 }), label("now", { x: w - pad - 20, y: h - 6 }));
  for (const c of CLASSES) {
    const points = samples.map((s) => `${x(s.uptime).toFixed(1)},${y(value(s.queues[c]) || 0).toFixed(1)}`);
    parts.push(svg("polyline", { class: `series c-${c}`, points: points.join(" ") }));
  }
  box.replaceChildren(...parts);
  const latest = samples.length ? samples[samples.length - 1].queues : {};
  const now = CLASSES.map((c) => `${c} ${latest[c] ? value(latest[c]) ?? "none" : "–"}`).join(", ");
  box.setAttribute("aria-label", `Now: ${now}. Scale up to ${top}${unit}.`);
}

function remember(status) {
  if (samples.length && status.uptime_s < samples[samples.length - 1].uptime) samples.length = 0;  // restarted
  samples.push({ uptime: status.uptime_s, queues: status.queues });
  while (samples.length && samples[0].uptime < status.uptime_s - WINDOW_S) samples.shift();
  drawChart("chart-depth", (q) => q.depth + q.pending, "");
  drawChart("chart-age", (q) => q.oldest_age_s, " s");
}

async function getJson(path) {
  const response = await fetch(path, { cache: "no-store" });
  const body = await response.json();
  if (!response.ok) throw new Error(`${path}: ${response.status} ${body.error || ""}`);
  return body;
}

async function poll() {
  try {
    const [status, links, dead, open] = await Promise.all([
      getJson("/api/v1/status"),
      getJson("/api/v1/links"),
      getJson(`/api/v1/dead?limit=${DEAD_LIMIT}`),
      getJson(`/api/v1/distress?limit=${DEAD_LIMIT}`),
    ]);
    drawHeader(status);
    drawDistress(status, dead);
    drawOpenDistress(open);
    drawQueues(status);
    drawThroughput(status);
    drawRejected(status);
    drawLinks(links);
    drawDead(dead);
    remember(status);
    previous = status;
    $("error").hidden = true;
    document.body.dataset.polls = String(Number(document.body.dataset.polls || 0) + 1);
  } catch (err) {
    $("error").textContent = `Could not read the API (${err.message}); showing the last good answer.`;
    $("error").hidden = false;
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

function init() {
  $("interval").textContent = String(POLL_MS / 1000);
  $("dead-limit").textContent = String(DEAD_LIMIT);
  for (const el of document.querySelectorAll(".window")) el.textContent = String(WINDOW_S / 60);
  $("legend").replaceChildren(...CLASSES.map((c) => {
    const li = document.createElement("li");
    const swatch = document.createElement("span");
    swatch.className = `c-${c}`;
    swatch.setAttribute("aria-hidden", "true");
    li.append(swatch, c);
    return li;
  }));
  poll();
}

document.addEventListener("DOMContentLoaded", init);
