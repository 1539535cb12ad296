// The satgw dashboard: polls the JSON API and redraws. No library, no build step.
// Every number shown is a field of the last answer, unchanged (ages to 0.1 s; raw value in data-value);
// rates are the only derived figures: counter deltas over the server's uptime delta, and in the charts a
// sample's count over its interval. The charts are the server's samples (GET /api/v1/history), so they
// show the minutes before the page was opened; the link timelines are read every TIMELINE_MS.
"use strict";

const POLL_MS = 1500;
const TIMELINE_MS = 10000;
const TIMELINE_HOURS = 6;
const DEAD_LIMIT = 100;
const CLASSES = ["distress", "urgency", "safety", "routine"];
const SVG_NS = "http://www.w3.org/2000/svg";

const recorded = { every_s: 5, window_s: 900, samples: [], fetchedAt: null };  // the server's samples, oldest first
let previous = null;  // the last status, for rates
let timelineReadAt = null;  // Date.now() of the last timeline read

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

function drawIncidents(incidents) {
  const active = incidents.filter((i) => i.state === "open" || i.state === "acknowledged");
  const rows = active.map((i) => row([
    cell(i.id, false, "id"),
    cell(i.terminal, false, "terminal"),
    cell(i.state, false, "state"),
    cell(age(i.age_s), true, "age_s", i.age_s),
    cell(i.position ? `${i.position.lat}, ${i.position.lon}` : "none", false, "position"),
    cell(i.nature || "–", false, "nature"),
    cell(String(i.alerts.length), true, "alerts", i.alerts.length),
  ], i.id));
  fill($("incidents"), rows, "None.", 7);
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

function queueRows(queues) {
  return Object.entries(queues || {}).map(([name, q]) => row([
    cell(name),
    cell(String(q.depth), true, "depth", q.depth),
    cell(String(q.pending), true, "pending", q.pending),
    cell(age(q.oldest_age_s), true, "oldest_age_s", q.oldest_age_s),
  ], name));
}

function drawQueues(status) {
  fill($("queues"), queueRows(status.queues), "No queues.", 4);
  fill($("downlink-queues"), queueRows(status.downlink), "No downlink.", 4);
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

function svgText(text, attrs) {
  const t = svg("text", attrs);
  t.textContent = text;
  return t;
}

// -- charts: the server's samples (GET /api/v1/history), loaded whole at start, then the new ones each poll ----

function drawChart(id, value, unit) {
  const box = $(id);
  const [w, h, pad] = [400, 160, 24];
  const span = recorded.window_s;
  const end = recorded.samples.length ? recorded.samples[recorded.samples.length - 1].at : 0;
  const values = recorded.samples.flatMap((s) => CLASSES.map((c) => value(s, c) || 0));
  const top = Math.max(1, ...values);
  const x = (t) => pad + ((t - (end - span)) / span) * (w - 2 * pad);
  const y = (v) => h - pad - (v / top) * (h - 2 * pad);
  const parts = [
    svg("line", { class: "axis", x1: pad, y1: h - pad, x2: w - pad, y2: h - pad }),
    svg("line", { class: "axis", x1: pad, y1: pad, x2: pad, y2: h - pad }),
    svgText(`${Number(top.toFixed(2))}${unit}`, { x: pad + 4, y: pad - 8 }),
    svgText(`-${Math.round(span / 60)} min`, { x: pad, y: h - 6 }),
    svgText("last sample", { x: w - pad - 60, y: h - 6 }),
  ];
  for (const c of CLASSES) {
    const points = recorded.samples.map((s) => `${x(s.at).toFixed(1)},${y(value(s, c) || 0).toFixed(1)}`);
    const line = svg("polyline", { class: `series c-${c}`, points: points.join(" ") });
    line.dataset.class = c;
    line.dataset.values = recorded.samples.map((s) => String(value(s, c))).join(",");
    parts.push(line);
  }
  box.replaceChildren(...parts);
  box.dataset.ats = recorded.samples.map((s) => String(s.at)).join(",");
  const latest = recorded.samples[recorded.samples.length - 1];
  const now = CLASSES.map((c) => `${c} ${latest ? value(latest, c) ?? "none" : "–"}`).join(", ");
  box.setAttribute("aria-label", `Last sample: ${now}. Scale up to ${top}${unit}.`);
}

function drawCharts() {
  drawChart("chart-depth", (s, c) => s.queues[c].depth + s.queues[c].pending, "");
  drawChart("chart-age", (s, c) => s.queues[c].oldest_age_s, " s");
  drawChart("chart-delivered", (s, c) => (s.interval_s > 0 ? (s.delivered[c] || 0) / s.interval_s : 0), "/s");
}

function mergeHistory(answer) {
  recorded.every_s = answer.every_s;
  recorded.window_s = answer.window_s;
  const last = recorded.samples.length ? recorded.samples[recorded.samples.length - 1].at : -Infinity;
  recorded.samples.push(...answer.samples.filter((s) => s.at > last));
  const newest = recorded.samples.length ? recorded.samples[recorded.samples.length - 1].at : 0;
  while (recorded.samples.length && recorded.samples[0].at < newest - recorded.window_s) recorded.samples.shift();
  recorded.fetchedAt = Date.now();
  for (const el of document.querySelectorAll(".window")) el.textContent = String(Math.round(recorded.window_s / 60));
  $("every").textContent = String(recorded.every_s);
}

function historyPath() {
  // The whole window at first; then only the minutes since the last read (the rest is already here).
  if (recorded.fetchedAt === null) return "/api/v1/history";
  const minutes = Math.ceil((Date.now() - recorded.fetchedAt) / 60000) + 1;
  return `/api/v1/history?minutes=${Math.min(minutes, Math.max(1, Math.floor(recorded.window_s / 60)))}`;
}

// -- link timeline: passes, outages, busy cards and the next send per link (GET /api/v1/links/{name}/timeline) --

function clock(t, seconds) {
  const options = seconds ? { hour: "2-digit", minute: "2-digit", second: "2-digit" } : { hour: "2-digit", minute: "2-digit" };
  return new Date(t * 1000).toLocaleTimeString([], options);
}

function inTime(seconds) {
  if (seconds < 1) return "now";
  if (seconds < 120) return `in ${Math.round(seconds)} s`;
  if (seconds < 7200) return `in ${Math.round(seconds / 60)} min`;
  return `in ${(seconds / 3600).toFixed(1)} h`;
}

function spanTitle(s) {
  const when = `${clock(s.start, true)}–${clock(s.end, true)}`;
  if (s.kind === "pass") {
    return `${s.label} pass ${when}, peak ${s.peak_elevation_deg.toFixed(1)}° at ${clock(s.peak_at, true)}`;
  }
  const names = { in_view: "in view", outage: "outage", interval: "send interval" };
  return `${names[s.kind] || s.kind}${s.label ? ` (${s.label})` : ""} ${when}`;
}

const LANES = { pass: 0, in_view: 0, outage: 1, interval: 2 };
const LANE_NAMES = ["sky", "outage", "cards"];

function drawTimeline(t) {
  const [w, left, right, laneH, top] = [800, 60, 10, 18, 18];
  const h = top + laneH * 3 + 26;
  const x = (v) => left + ((Math.min(Math.max(v, t.start), t.end) - t.start) / (t.end - t.start)) * (w - left - right);
  const box = svg("svg", { viewBox: `0 0 ${w} ${h}`, role: "img", class: "timeline" });
  box.dataset.link = t.link;
  box.dataset.start = String(t.start);
  box.dataset.end = String(t.end);
  const parts = LANE_NAMES.map((name, i) => svgText(name, { x: 4, y: top + laneH * i + 13, class: "lane" }));
  for (let hour = Math.ceil(t.start / 3600) * 3600; hour <= t.end; hour += 3600) {
    parts.push(svg("line", { class: "tick", x1: x(hour), y1: top, x2: x(hour), y2: top + laneH * 3 }));
    parts.push(svgText(clock(hour, false), { x: x(hour) - 14, y: h - 8 }));
  }
  for (const s of t.spans) {
    const lane = LANES[s.kind] ?? 2;
    const rect = svg("rect", {
      class: `span k-${s.kind}`,
      x: x(s.start).toFixed(2),
      y: top + laneH * lane + 2,
      width: Math.max(1, x(s.end) - x(s.start)).toFixed(2),
      height: laneH - 4,
    });
    Object.assign(rect.dataset, { kind: s.kind, start: String(s.start), end: String(s.end), label: s.label });
    const title = svg("title", {});
    title.textContent = spanTitle(s);
    rect.append(title);
    parts.push(rect);
  }
  const next = t.next_send_at.routine;
  if (next > t.now + 0.5) {
    const marker = svg("line", { class: "k-next", x1: x(next), y1: top - 6, x2: x(next), y2: top + laneH * 3 });
    marker.dataset.at = String(next);
    parts.push(marker);
  }
  const now = svg("line", { class: "k-now", x1: x(t.now), y1: 4, x2: x(t.now), y2: top + laneH * 3 + 4 });
  now.dataset.at = String(t.now);
  parts.push(now, svgText("now", { x: x(t.now) + 3, y: 12 }));
  box.replaceChildren(...parts);
  box.setAttribute("aria-label", timelineSummary(t));
  return box;
}

function timelineSummary(t) {
  const current = t.spans.filter((s) => s.start <= t.now && t.now < s.end);
  const down = current.find((s) => s.kind === "outage");
  const sky = current.find((s) => s.kind === "pass" || s.kind === "in_view");
  const upcoming = t.spans.find((s) => s.kind === "pass" && s.start > t.now);
  const parts = [];
  if (down) parts.push(`Outage now (${down.label}) until ${clock(down.end, true)}.`);
  if (sky && sky.kind === "pass") parts.push(`${sky.label} in view until ${clock(sky.end, true)}.`);
  else if (sky) parts.push(`${sky.label || "Satellite"} in view.`);
  else if (upcoming) {
    const peak = upcoming.peak_elevation_deg.toFixed(0);
    parts.push(`Next pass: ${upcoming.label} at ${clock(upcoming.start, false)} (${inTime(upcoming.start - t.now)}), peak ${peak}°.`);
  } else if (t.spans.length === 0) parts.push("This link tells nothing of its timeline.");
  else parts.push("No pass in this stretch.");
  const sends = CLASSES.map((c) => `${c} ${inTime(t.next_send_at[c] - t.now)}`).join(", ");
  parts.push(`Next send: ${sends}.`);
  return parts.join(" ");
}

function drawTimelines(timelines) {
  const figures = timelines.map((t) => {
    const figure = document.createElement("figure");
    figure.className = "timeline";
    figure.dataset.link = t.link;
    const caption = document.createElement("figcaption");
    const name = document.createElement("strong");
    name.textContent = t.link;
    const summary = document.createElement("span");
    summary.className = "summary";
    summary.textContent = ` ${timelineSummary(t)}`;
    caption.append(name, summary);
    figure.append(caption, drawTimeline(t));
    return figure;
  });
  if (figures.length === 0) {
    const none = document.createElement("p");
    none.textContent = "No links.";
    figures.push(none);
  }
  $("timelines").replaceChildren(...figures);
}

async function pollTimelines(links) {
  const answers = await Promise.all(links.map((l) => getJson(`/api/v1/links/${encodeURIComponent(l.name)}/timeline?hours=${TIMELINE_HOURS}`)));
  drawTimelines(answers);
  timelineReadAt = Date.now();
  document.body.dataset.timelines = String(Number(document.body.dataset.timelines || 0) + 1);
}

// -- terminals (shown when the status carries them) ----------------------------------------------------------

function onlineTerminals(t) {
  // status.terminals: {registered, online, seen, online_window_s}; older gateways leave it out.
  if (!t || typeof t.online !== "number") return null;
  const heard = typeof t.online_window_s === "number" ? ` (heard within ${Math.round(t.online_window_s / 60)} min)` : "";
  const of = typeof t.registered === "number" ? ` of ${t.registered} registered` : "";
  return `${t.online}${of}${heard}`;
}

function drawTerminals(status) {
  const online = onlineTerminals(status.terminals);
  $("terminals").hidden = online === null;
  if (online !== null) $("terminals-online").textContent = online;
}

async function getJson(path) {
  const response = await fetch(path, { cache: "no-store" });
  const body = await response.json();
  if (!response.ok) throw new Error(`${path}: ${response.status} ${body.error || ""}`);
  return body;
}

async function poll() {
  try {
    const [status, links, dead, open, recent, incidents] = await Promise.all([
      getJson("/api/v1/status"),
      getJson("/api/v1/links"),
      getJson(`/api/v1/dead?limit=${DEAD_LIMIT}`),
      getJson(`/api/v1/distress?limit=${DEAD_LIMIT}`),
      getJson(historyPath()),
      getJson(`/api/v1/incidents?limit=${DEAD_LIMIT}`),
    ]);
    drawHeader(status);
    drawTerminals(status);
    drawDistress(status, dead);
    drawOpenDistress(open);
    drawIncidents(incidents);
    drawQueues(status);
    drawThroughput(status);
    drawRejected(status);
    drawLinks(links);
    drawDead(dead);
    mergeHistory(recent);
    drawCharts();
    if (timelineReadAt === null || Date.now() - timelineReadAt >= TIMELINE_MS) await pollTimelines(links);
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
  $("timeline-interval").textContent = String(TIMELINE_MS / 1000);
  $("dead-limit").textContent = String(DEAD_LIMIT);
  for (const el of document.querySelectorAll(".past")) el.textContent = "10";
  for (const el of document.querySelectorAll(".ahead")) el.textContent = String(TIMELINE_HOURS);
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
