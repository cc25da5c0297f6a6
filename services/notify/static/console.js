// The duty officers' console: open alerts from server-sent events, one table row per alert, kept
// and changed in place. Every value from the server goes in by textContent or an attribute, never
// as markup.
"use strict";

const csrf = document.querySelector('meta[name="csrf-token"]').content;
const table = document.getElementById("alerts");
const live = document.getElementById("live");
const filters = {
  kommune: document.getElementById("filter-kommune"), // absent for a lokalbetjent: his list is one kommune's
  severity: document.getElementById("filter-severity"),
};
const alerts = new Map(); // id -> the alert as the server last sent it
const rows = new Map(); // id -> its row on the page (elements made once, kept while the alert is listed)
const acking = new Set(); // ids whose ack is on its way
const SEVERITY_RANK = { critical: 0, warning: 1, info: 2 };
const COLUMNS = 8;
// While the pointer moves over the list, rows do not move, appear or leave (a click must land where it was
// aimed); text changes in place. The held changes are made once it leaves, or rests this long.
const HOLD_MS = 4000;
const ANNOUNCE_EVERY_MS = 10000; // the live region speaks at most this often
const FAILED = "fejlet"; // a delivery's state as the server labels it
const KIND_DA = {
  raised: ["alarm", "alarmer"],
  escalated: ["eskalering", "eskaleringer"],
  reminder: ["påmindelse", "påmindelser"],
  acknowledged: ["besked om kvittering", "beskeder om kvittering"],
  resolved: ["besked om afslutning", "beskeder om afslutning"],
  updated: ["opdatering", "opdateringer"],
};
const FACTS = [
  ["title", "Frist"], ["reason", "Årsag"], ["due", "Forfalder"], ["raised", "Rejst"], ["level", "Eskaleret"],
  ["acknowledged", "Kvitteret af"], ["next", "Næste eskalering"], ["resolved", "Afsluttet"],
];
const when = new Intl.DateTimeFormat("da-DK", {
  timeZone: "Europe/Copenhagen", day: "2-digit", month: "2-digit", hour: "2-digit", minute: "2-digit",
  second: "2-digit", hourCycle: "h23",
});

let holdUntil = 0;
let holdTimer = null;
let pointer = null; // where the pointer last was over the list: a "move" that moves nothing holds nothing
let primed = false; // the first list arrived: later alerts are news
let ended = false; // the session is over: nothing more can be acknowledged here
const heard = []; // new critical alerts not yet announced
let announceTimer = null;
let lastAnnounced = 0;

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

// Writes only what differs, so an update that changes nothing changes nothing on the page.
function setText(node, text) {
  const value = text === undefined || text === null ? "" : String(text);
  if (node.textContent !== value) node.textContent = value;
}

function setAttr(node, name, value) {
  if (value === null || value === undefined) {
    if (node.hasAttribute(name)) node.removeAttribute(name);
  } else if (node.getAttribute(name) !== String(value)) node.setAttribute(name, String(value));
}

function parts(iso) {
  return Object.fromEntries(when.formatToParts(new Date(iso)).map((x) => [x.type, x.value]));
}

// "27.11. kl. 14:51:58", Copenhagen time, whatever the browser's own zone.
function fmt(iso) {
  if (!iso) return "";
  const p = parts(iso);
  return p.day + "." + p.month + ". kl. " + p.hour + ":" + p.minute + ":" + p.second;
}

// "04:32", with the date when it was not today.
function clock(iso) {
  const p = parts(iso), today = parts(new Date().toISOString());
  const time = p.hour + ":" + p.minute;
  return p.day === today.day && p.month === today.month ? time : p.day + "." + p.month + ". " + time;
}

// The server's order: unresolved before resolved, unacknowledged before acknowledged, critical first,
// soonest due first, then by id.
function urgency(a, b) {
  const rank = (x) => (x.state === "resolved" ? 2 : x.state === "acknowledged" ? 1 : 0);
  const sev = (x) => SEVERITY_RANK[x.severity] ?? 3;
  return rank(a) - rank(b) || sev(a) - sev(b) || Date.parse(a.due_at) - Date.parse(b.due_at) ||
    (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

function countdown(node) {
  if (!node.dataset.due) return;
  const left = Math.round((Date.parse(node.dataset.due) - Date.now()) / 1000);
  const abs = Math.abs(left);
  const h = Math.floor(abs / 3600), m = Math.floor((abs % 3600) / 60), s = abs % 60;
  const text = h ? h + " t " + String(m).padStart(2, "0") + " min" : m + " min " + String(s).padStart(2, "0") + " s";
  setText(node, left >= 0 ? "om " + text : "overskredet for " + text + " siden");
  node.classList.toggle("overdue", left < 0);
}

function referenceOf(a) {
  return a.reference || "(reference ukendt)";
}

function ackable(a) {
  return a.state === "open" || a.state === "escalated";
}

// ---- one alert's row ----------------------------------------------------------------------------

function makeRow(a) {
  const body = el("tbody", "alert");
  body.dataset.id = a.id;
  const line = el("tr", "row");
  const badge = el("span", "badge");
  const disclose = el("button", "disclose");
  disclose.type = "button";
  disclose.setAttribute("aria-expanded", "false");
  disclose.setAttribute("aria-controls", "details-" + a.id);
  disclose.title = "Vis eller skjul detaljer";
  const reference = el("span", "reference");
  disclose.append(reference);
  const refCell = el("th", "ref");
  refCell.scope = "row";
  refCell.append(disclose);
  const state = el("span", "state");
  const ack = el("button", "ack", "Kvittér");
  ack.type = "button";
  const cells = {
    sev: el("td", "sev"), kommune: el("td", "kommune"), category: el("td", "category"),
    due: el("td", "countdown"), state: el("td", "status"), by: el("td", "by"), action: el("td", "action"),
  };
  cells.sev.append(badge);
  cells.state.append(state);
  cells.action.append(ack);
  line.append(cells.sev, refCell, cells.kommune, cells.category, cells.due, cells.state, cells.by, cells.action);
  const detailsRow = el("tr", "details");
  detailsRow.id = "details-" + a.id;
  detailsRow.hidden = true;
  const detailsCell = el("td");
  detailsCell.colSpan = COLUMNS;
  detailsRow.append(detailsCell);
  body.append(line, detailsRow);

  const row = { id: a.id, body, badge, disclose, reference, state, ack, cells, detailsRow, detailsCell, details: null };
  // The button is this row's for as long as the row lives: a click lands on the alert it was aimed at.
  ack.addEventListener("click", () => acknowledge(row));
  disclose.addEventListener("click", () => toggle(row));
  return row;
}

function update(row, a) {
  setAttr(row.body, "class", "alert sev-" + a.severity + " state-" + a.state);
  setAttr(row.body, "data-state", a.state);
  setAttr(row.body, "data-severity", a.severity);
  setAttr(row.body, "data-kommune", a.kommune);
  setText(row.badge, a.severity_da);
  setText(row.reference, referenceOf(a));
  setText(row.cells.kommune, a.kommune_name);
  setText(row.cells.category, a.category_da);
  setAttr(row.cells.category, "title", a.category_da);
  if (row.cells.due.dataset.due !== a.due_at) {
    row.cells.due.dataset.due = a.due_at || "";
    countdown(row.cells.due);
  }
  setText(row.state, a.state_da);
  setText(row.cells.by, a.acknowledged_by_name || a.acknowledged_by || "");
  const sending = acking.has(a.id);
  const hide = !ackable(a) && !sending;
  // A keyboard user who just acknowledged stays on the row, not thrown back to the top of the page.
  if (hide && document.activeElement === row.ack) row.disclose.focus({ preventScroll: true });
  row.ack.hidden = hide;
  row.ack.disabled = sending || ended;
  setText(row.ack, sending ? "Kvitterer …" : "Kvittér");
  setAttr(row.ack, "aria-label", (sending ? "Kvitterer " : "Kvittér ") + referenceOf(a));
  if (!row.detailsRow.hidden) drawDetails(row, a);
}

function toggle(row) {
  const open = row.disclose.getAttribute("aria-expanded") !== "true";
  row.disclose.setAttribute("aria-expanded", String(open));
  row.detailsRow.hidden = !open;
  const a = alerts.get(row.id);
  if (open && a) drawDetails(row, a);
}

// The details are made the first time they are opened, and then changed in place like the row.
function buildDetails(row) {
  const facts = el("dl", "facts");
  const fact = {};
  for (const [key, label] of FACTS) {
    const dt = el("dt", null, label), dd = el("dd");
    facts.append(dt, dd);
    fact[key] = { dt, dd };
  }
  const toldHeading = el("h2", null, "Underrettet");
  const told = el("ul", "told");
  const history = el("details", "history");
  const summary = el("summary");
  const deliveries = el("table", "deliveries");
  const head = el("thead"), headRow = el("tr"), tbody = el("tbody");
  for (const h of ["Hvem", "Kanal", "Besked", "Status", "Hvornår"]) {
    const th = el("th", null, h);
    th.scope = "col";
    headRow.append(th);
  }
  head.append(headRow);
  deliveries.append(head, tbody);
  history.append(summary, deliveries);
  const report = buildReport(row);
  const wrap = el("div", "details-body");
  wrap.append(facts, report.section, toldHeading, told, history);
  row.detailsCell.append(wrap);
  row.details = { fact, told, summary, tbody, drawn: "", report };
}

// ---- the report (Vis anmeldelse): read from intake as the officer, on request, logged there ---------------
// Personal: asked for each time it is shown, never kept in the script's state, and gone from the page when
// hidden, when the row leaves or when the session ends.

function buildReport(row) {
  const section = el("section", "report-section");
  const heading = el("h2", null, "Anmeldelsen");
  heading.id = "report-heading-" + row.id;
  section.setAttribute("aria-labelledby", heading.id);
  const button = el("button", "show-report", "Vis anmeldelse");
  button.type = "button";
  button.setAttribute("aria-expanded", "false");
  button.setAttribute("aria-controls", "report-" + row.id);
  const status = el("p", "report-status");
  status.setAttribute("role", "status");
  const content = el("div", "report");
  content.id = "report-" + row.id;
  content.hidden = true;
  section.append(heading, button, status, content);
  const report = { section, button, status, content, loading: false, reference: "" };
  button.addEventListener("click", () => toggleReport(row, report));
  return report;
}

// "Vis anmeldelse" or "Skjul anmeldelse", and for a screen reader which alert's.
function labelReport(report) {
  const text = report.button.getAttribute("aria-expanded") === "true" ? "Skjul anmeldelse" : "Vis anmeldelse";
  setText(report.button, text);
  setAttr(report.button, "aria-label", report.reference ? text + " " + report.reference : null);
}

function hideReport(report) {
  setText(report.status, "");
  report.content.replaceChildren();
  report.content.hidden = true;
  report.button.setAttribute("aria-expanded", "false");
  labelReport(report);
}

async function toggleReport(row, report) {
  if (report.loading || ended) return;
  if (report.button.getAttribute("aria-expanded") === "true") {
    hideReport(report);
    return;
  }
  report.loading = true;
  report.button.setAttribute("aria-busy", "true");
  report.status.classList.remove("error");
  setText(report.status, "Henter anmeldelsen …");
  try {
    const response = await fetch("/console/alerts/" + encodeURIComponent(row.id) + "/report", {
      headers: { "X-CSRF-Token": csrf, Accept: "application/json" }, credentials: "same-origin", cache: "no-store",
    });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      report.status.classList.add("error");
      setText(report.status, body.detail || "Anmeldelsen kunne ikke hentes (" + response.status + ").");
      if (response.status === 401) location.reload();
      return;
    }
    if (ended) return;
    drawReport(report, body);
    setText(report.status, "Anmeldelsen er vist, og opslaget er logget.");
  } catch (err) {
    report.status.classList.add("error");
    setText(report.status, "Ingen forbindelse til serveren; prøv igen.");
  } finally {
    report.loading = false;
    report.button.removeAttribute("aria-busy");
  }
}

function drawReport(report, r) {
  const facts = el("dl", "report-facts");
  const add = (label, value) => {
    if (value) facts.append(el("dt", null, label), el("dd", null, value));
  };
  add("Modtaget", fmt(r.received_at));
  add("Adresse", [r.address, r.postcode].filter(Boolean).join(", "));
  if (r.position) add("Position", r.position.lat + ", " + r.position.lon);
  add("Institution", r.institution);
  add("Beskrivelse", r.description);
  if (r.contact) {
    add("Kontakt", [r.contact.name, r.contact.phone, r.contact.email].filter(Boolean).join(" · "));
  } else if (r.contact_erased_at) {
    add("Kontakt", "Kontaktoplysningerne er slettet " + fmt(r.contact_erased_at) + ".");
  } else if (r.anonymous) {
    add("Kontakt", "Anonymt tip: ingen kontaktoplysninger.");
  }
  const logged = el("p", "logged", "Opslaget er logget: " + fmt(r.logged.at) + ", formål: " + r.logged.purpose_da);
  report.content.replaceChildren(facts, logged);
  report.content.hidden = false;
  report.button.setAttribute("aria-expanded", "true");
  labelReport(report);
}

function drawDetails(row, a) {
  if (!row.details) buildDetails(row);
  const d = row.details;
  const show = (key, value) => {
    setText(d.fact[key].dd, value);
    d.fact[key].dt.hidden = d.fact[key].dd.hidden = !value;
  };
  show("title", a.title);
  show("reason", a.reason_da);
  show("due", fmt(a.due_at));
  show("raised", fmt(a.raised_at));
  show("level", a.level > 0 ? "trin " + a.level : "");
  let who = "";
  if (a.acknowledged_by) {
    who = a.acknowledged_by_name && a.acknowledged_by_name !== a.acknowledged_by
      ? a.acknowledged_by_name + " (" + a.acknowledged_by + ")" : a.acknowledged_by;
    who += " · " + fmt(a.acknowledged_at);
  }
  show("acknowledged", who);
  show("next", a.acknowledged_by || a.state === "resolved" ? "" : fmt(a.next_escalation_at));
  show("resolved", a.resolved_at ? [a.resolved_da, fmt(a.resolved_at)].filter(Boolean).join(" · ") : "");
  d.report.button.disabled = ended;
  d.report.reference = referenceOf(a);
  labelReport(d.report);

  // The history is drawn again only when it changed; its <details> stays as the officer left it.
  const drawn = JSON.stringify(a.deliveries);
  if (d.drawn === drawn) return;
  d.drawn = drawn;
  const groups = told(a.deliveries);
  d.told.replaceChildren(...(groups.length ? groups.map((g) => el("li", null, g)) : [el("li", null, "Ingen endnu.")]));
  setText(d.summary, "Alle beskeder (" + a.deliveries.length + ")");
  d.tbody.replaceChildren(...a.deliveries.map((x) => {
    const tr = el("tr", "delivery");
    tr.append(el("td", null, x.recipient), el("td", null, x.channel), el("td", null, x.stage),
      el("td", null, x.state + (x.attempts > 1 ? " (" + x.attempts + " forsøg)" : "")), el("td", null, fmt(x.at)));
    return tr;
  }));
}

// "Vagtchef A: 24 påmindelser, seneste 04:32 (webhook, e-mail)": one line per recipient and kind of
// notice, a notice sent on two channels counted once.
function told(deliveries) {
  const groups = new Map();
  for (const x of deliveries) {
    const key = x.recipient + "\u0000" + x.kind;
    let g = groups.get(key);
    if (!g) {
      g = { recipient: x.recipient, kind: x.kind, notices: new Set(), channels: new Set(), latest: "", failed: 0 };
      groups.set(key, g);
    }
    g.notices.add(x.stage);
    g.channels.add(x.channel);
    if (x.at && (!g.latest || Date.parse(x.at) > Date.parse(g.latest))) g.latest = x.at;
    if (x.state === FAILED) g.failed += 1;
  }
  return [...groups.values()].map((g) => {
    const n = g.notices.size;
    const [one, many] = KIND_DA[g.kind] || KIND_DA.updated;
    let text = g.recipient + ": " + n + " " + (n === 1 ? one : many);
    if (g.latest) text += (n === 1 ? " kl. " : ", seneste ") + clock(g.latest);
    text += " (" + [...g.channels].join(", ") + ")";
    if (g.failed) text += ", " + g.failed + " fejlet";
    return text;
  });
}

// ---- the list: rows in the server's order, moved as little as can be ---------------------------

function holding() {
  return Date.now() < holdUntil;
}

function hold(event) {
  if (event.type === "pointermove") {
    // Chromium sends a move after a scroll or a change of layout under a resting pointer: not a hand moving.
    if (pointer && pointer.x === event.clientX && pointer.y === event.clientY) return;
    pointer = { x: event.clientX, y: event.clientY };
  }
  holdUntil = Date.now() + HOLD_MS;
  clearTimeout(holdTimer);
  holdTimer = setTimeout(layout, HOLD_MS + 50);
}

function release() {
  pointer = null;
  holdUntil = 0;
  clearTimeout(holdTimer);
  layout();
}

// Of `seq` (positions, -1 for none), the indices of a longest increasing run: the rows that stay put.
function longestRun(seq) {
  const tails = [], prev = new Array(seq.length).fill(-1);
  for (let i = 0; i < seq.length; i++) {
    if (seq[i] < 0) continue;
    let lo = 0, hi = tails.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (seq[tails[mid]] < seq[i]) lo = mid + 1;
      else hi = mid;
    }
    prev[i] = lo > 0 ? tails[lo - 1] : -1;
    tails[lo] = i;
  }
  const keep = new Set();
  for (let i = tails.length ? tails[tails.length - 1] : -1; i >= 0; i = prev[i]) keep.add(i);
  return keep;
}

function place(body, before) {
  if (body.isConnected && typeof table.moveBefore === "function") {
    try {
      table.moveBefore(body, before); // keeps focus and open disclosures as they are
      return;
    } catch (err) {
      // not movable here after all (an older engine's rules): insert, and give the focus back below
    }
  }
  const focused = body.contains(document.activeElement) ? document.activeElement : null;
  table.insertBefore(body, before);
  if (focused) focused.focus({ preventScroll: true });
}

// Rows appear, leave and move here only, and not while the officer's pointer is on the list.
function layout() {
  if (holding()) {
    summarize();
    return;
  }
  let refocus = -1; // where the row with the keyboard focus was, when it leaves
  for (const [id, row] of rows) {
    const a = alerts.get(id);
    if (!a || a.state === "resolved") {
      if (row.body.contains(document.activeElement)) refocus = [...table.tBodies].indexOf(row.body);
      row.body.remove();
      rows.delete(id);
    }
  }
  for (const [id, a] of alerts) if (a.state === "resolved") alerts.delete(id);
  const wanted = [...alerts.values()].sort(urgency).map((a) => {
    let row = rows.get(a.id);
    if (!row) {
      row = makeRow(a);
      rows.set(a.id, row);
      update(row, a);
      row.body.hidden = !matches(a);
    }
    return row;
  });
  const position = new Map([...table.tBodies].map((b, i) => [b, i]));
  const stay = longestRun(wanted.map((r) => position.get(r.body) ?? -1));
  let next = null;
  for (let i = wanted.length - 1; i >= 0; i--) {
    if (!stay.has(i)) place(wanted[i].body, next);
    next = wanted[i].body;
  }
  if (refocus >= 0) {
    // The focus goes to the row that took its place (or the one before it), not back to the top of the page.
    const shown = [...table.tBodies].filter((b) => !b.hidden);
    const after = shown.find((b) => [...table.tBodies].indexOf(b) >= refocus) || shown[shown.length - 1];
    if (after) rows.get(after.dataset.id).disclose.focus({ preventScroll: true });
  }
  summarize();
}

// ---- filters ------------------------------------------------------------------------------------

function chosen(name) {
  return filters[name] ? filters[name].value : "";
}

function matches(a) {
  const kommune = chosen("kommune"), severity = chosen("severity");
  return (!kommune || a.kommune === kommune) && (!severity || a.severity === severity);
}

function applyFilters() {
  for (const [id, row] of rows) {
    const a = alerts.get(id);
    const hidden = !a || !matches(a);
    if (row.body.hidden !== hidden) row.body.hidden = hidden;
  }
  summarize();
}

// The filters live in the address, so a filtered console can be bookmarked and survives a reload.
function filtersFromAddress() {
  const query = new URLSearchParams(location.search);
  for (const [name, select] of Object.entries(filters)) {
    if (!select) continue;
    const value = query.get(name) || "";
    select.value = [...select.options].some((o) => o.value === value) ? value : "";
    select.addEventListener("change", () => {
      const q = new URLSearchParams(location.search);
      if (select.value) q.set(name, select.value);
      else q.delete(name);
      const search = q.toString();
      history.replaceState(null, "", location.pathname + (search ? "?" + search : "") + location.hash);
      applyFilters();
    });
  }
  document.getElementById("filters").addEventListener("submit", (e) => e.preventDefault());
}

function summarize() {
  const open = [...alerts.values()].filter((a) => a.state !== "resolved");
  let shown = 0, listed = 0;
  for (const [id, row] of rows) {
    const a = alerts.get(id);
    if (!a || a.state === "resolved") continue;
    listed += 1;
    if (!row.body.hidden) shown += 1;
  }
  setText(document.getElementById("count"), open.length);
  setText(document.getElementById("shown"), shown + " af " + open.length + " vist");
  const empty = document.getElementById("empty");
  setText(empty, open.length ? "Ingen åbne alarmer passer til filteret." : "Ingen åbne alarmer.");
  empty.hidden = shown > 0;
  const waiting = open.filter((a) => !rows.has(a.id)).length;
  const leaving = rows.size - listed;
  const held = document.getElementById("held");
  const news = [];
  if (waiting) news.push(waiting + (waiting === 1 ? " ny" : " nye"));
  if (leaving) news.push(leaving + (leaving === 1 ? " afsluttet" : " afsluttede"));
  setText(held, news.length ? "Listen står stille, mens du peger på den · venter: " + news.join(", ") : "");
  held.hidden = !news.length;
}

// ---- news -------------------------------------------------------------------------------------

function notice(text) {
  const node = document.getElementById("notice");
  setText(node, text);
  node.classList.toggle("shown", Boolean(text));
}

// A new critical alert is said once, politely, several together; a countdown's tick never is.
function announce(a) {
  heard.push(referenceOf(a) + " (" + a.kommune_name + (matches(a) ? "" : ", skjult af filteret") + ")");
  if (announceTimer) return;
  announceTimer = setTimeout(() => {
    announceTimer = null;
    lastAnnounced = Date.now();
    const items = heard.splice(0);
    const listed = items.slice(0, 3).join(", ") + (items.length > 3 ? " og " + (items.length - 3) + " flere" : "");
    setText(document.getElementById("announce"),
      (items.length === 1 ? "Ny kritisk alarm: " : items.length + " nye kritiske alarmer: ") + listed + ".");
  }, Math.max(1000, lastAnnounced + ANNOUNCE_EVERY_MS - Date.now()));
}

function receive(batch, snapshot) {
  const ids = new Set(batch.map((a) => a.id));
  if (snapshot) for (const id of alerts.keys()) if (!ids.has(id)) alerts.delete(id); // gone while away
  for (const a of batch) {
    const known = alerts.get(a.id);
    if (a.state === "resolved" && !known) continue;
    // A breach taken back leaves the list; the duty officer is told why, not left to wonder.
    if (a.withdrawal_da && known && known.state !== "resolved") notice(referenceOf(a) + ": " + a.withdrawal_da);
    if (primed && a.severity === "critical" && ackable(a) && (!known || known.severity !== "critical")) announce(a);
    alerts.set(a.id, a);
    const row = rows.get(a.id);
    if (row) update(row, a);
  }
  primed = true;
  layout();
}

// ---- acknowledging --------------------------------------------------------------------------------

async function acknowledge(row) {
  const id = row.id;
  if (acking.has(id) || ended) return;
  const focused = document.activeElement === row.ack; // a disabled button loses the keyboard focus
  acking.add(id);
  if (alerts.has(id)) update(row, alerts.get(id));
  try {
    const response = await fetch("/console/alerts/" + encodeURIComponent(id) + "/ack", {
      method: "POST", headers: { "X-CSRF-Token": csrf }, credentials: "same-origin",
    });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      notice(body.detail || "Kvittering mislykkedes (" + response.status + ").");
      if (response.status === 401) location.reload();
      return;
    }
    notice("");
    const known = alerts.get(id);
    if (known) {
      // The change also arrives by the feed; showing it now spares the officer the wait.
      Object.assign(known, {
        state: body.state, acknowledged_by: body.acknowledged_by, acknowledged_by_name: body.acknowledged_by_name,
        acknowledged_at: body.acknowledged_at, state_da: body.state === "acknowledged" ? "Kvitteret" : known.state_da,
      });
    }
  } catch (err) {
    notice("Ingen forbindelse til serveren; prøv igen.");
  } finally {
    acking.delete(id);
    const a = alerts.get(id);
    if (a && rows.get(id) === row) update(row, a);
    const lost = !document.activeElement || document.activeElement === document.body;
    if (focused && lost) (row.ack.hidden ? row.disclose : row.ack).focus();
    layout();
  }
}

// ---- the feed -------------------------------------------------------------------------------------

function signedOut() {
  ended = true;
  live.dataset.state = "down";
  live.textContent = "Logget ud";
  const link = document.getElementById("sign-in-again");
  link.href = "/console" + location.search;
  document.getElementById("session-ended").hidden = false;
  for (const [id, row] of rows) {
    if (row.details) hideReport(row.details.report); // a report is for a signed-in officer's eyes
    if (alerts.has(id)) update(row, alerts.get(id));
  }
}

function connect() {
  const source = new EventSource("/console/events");
  source.addEventListener("open", () => { live.dataset.state = "live"; live.textContent = "Live"; });
  source.addEventListener("error", () => {
    if (ended) return;
    live.dataset.state = "down";
    live.textContent = "Genforbinder …";
    // The browser gives up only when the server refuses (the sign-in ended): the reload signs in again.
    if (source.readyState === EventSource.CLOSED) location.reload();
  });
  source.addEventListener("snapshot", (e) => receive(JSON.parse(e.data), true));
  source.addEventListener("alerts", (e) => receive(JSON.parse(e.data), false));
  // The server dropped this console (it fell behind or lost its listener): start again from a fresh list.
  source.addEventListener("restart", () => { source.close(); setTimeout(connect, 500); });
  // The session ended (signed out elsewhere, disabled at the provider, the shift is over): say so, stay put.
  source.addEventListener("signed-out", () => { source.close(); signedOut(); });
}

table.addEventListener("pointermove", hold);
table.addEventListener("pointerdown", hold);
table.addEventListener("pointerleave", release);
filtersFromAddress();
setInterval(() => { for (const row of rows.values()) countdown(row.cells.due); }, 1000);
connect();
