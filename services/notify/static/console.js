// The duty officers' console: draws open alerts from server-sent events. Every value from the
// server goes in by textContent or a data attribute, never as markup.
"use strict";

const csrf = document.querySelector('meta[name="csrf-token"]').content;
const list = document.getElementById("alerts");
const live = document.getElementById("live");
const alerts = new Map();
const SEVERITY_RANK = { critical: 0, warning: 1, info: 2 };
const when = new Intl.DateTimeFormat("da-DK", {
  timeZone: "Europe/Copenhagen", day: "2-digit", month: "2-digit", hour: "2-digit", minute: "2-digit",
  second: "2-digit", hourCycle: "h23",
});

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

// "27.11. kl. 14:51:58", Copenhagen time, whatever the browser's own zone.
function fmt(iso) {
  if (!iso) return "";
  const p = Object.fromEntries(when.formatToParts(new Date(iso)).map((x) => [x.type, x.value]));
  return p.day + "." + p.month + ". kl. " + p.hour + ":" + p.minute + ":" + p.second;
}

// Same order as the API: unacknowledged before acknowledged, critical first, soonest due first.
function urgency(a, b) {
  const ack = (x) => (x.state === "acknowledged" ? 1 : 0);
  return ack(a) - ack(b) || SEVERITY_RANK[a.severity] - SEVERITY_RANK[b.severity] ||
    Date.parse(a.due_at) - Date.parse(b.due_at) || (a.id < b.id ? -1 : 1);
}

function countdown(node) {
  const left = Math.round((Date.parse(node.dataset.due) - Date.now()) / 1000);
  const abs = Math.abs(left);
  const h = Math.floor(abs / 3600), m = Math.floor((abs % 3600) / 60), s = abs % 60;
  const text = h ? h + " t " + String(m).padStart(2, "0") + " min" : m + " min " + String(s).padStart(2, "0") + " s";
  node.textContent = left >= 0 ? "om " + text : "overskredet for " + text + " siden";
  node.classList.toggle("overdue", left < 0);
}

function field(dl, label, value) {
  dl.append(el("dt", null, label), el("dd", null, value));
}

function card(a) {
  const article = el("article", "alert sev-" + a.severity + " state-" + a.state);
  article.dataset.id = a.id;
  article.dataset.state = a.state;

  const head = el("header");
  head.append(el("span", "badge", a.severity_da), el("span", "state", a.state_da),
    el("h2", "reference", a.reference || "(reference ukendt)"), el("span", "reason", a.reason_da));
  const due = el("span", "countdown");
  due.dataset.due = a.due_at;
  countdown(due);
  head.append(due);
  article.append(head);

  const dl = el("dl", "facts");
  field(dl, "Kommune", a.kommune_name);
  field(dl, "Kategori", a.category_da);
  field(dl, "Frist", a.title);
  field(dl, "Forfalder", fmt(a.due_at));
  field(dl, "Rejst", fmt(a.raised_at));
  if (a.level > 0) field(dl, "Eskaleret", "trin " + a.level);
  if (a.acknowledged_by) {
    const who = a.acknowledged_by_name && a.acknowledged_by_name !== a.acknowledged_by
      ? a.acknowledged_by_name + " (" + a.acknowledged_by + ")" : a.acknowledged_by;
    field(dl, "Kvitteret af", who + " · " + fmt(a.acknowledged_at));
  }
  else if (a.next_escalation_at) field(dl, "Næste eskalering", fmt(a.next_escalation_at));
  article.append(dl);

  const table = el("table", "deliveries");
  const caption = el("caption", null, "Underrettet");
  const headRow = el("tr");
  for (const h of ["Hvem", "Kanal", "Besked", "Status", "Hvornår"]) headRow.append(el("th", null, h));
  table.append(caption, headRow);
  for (const d of a.deliveries) {
    const row = el("tr", "delivery");
    row.append(el("td", null, d.recipient), el("td", null, d.channel), el("td", null, d.stage),
      el("td", null, d.state + (d.attempts > 1 ? " (" + d.attempts + " forsøg)" : "")), el("td", null, fmt(d.at)));
    table.append(row);
  }
  article.append(table);

  if (a.state === "open" || a.state === "escalated") {
    const button = el("button", "ack", "Kvittér");
    button.type = "button";
    button.addEventListener("click", () => acknowledge(a.id, button));
    article.append(button);
  }
  return article;
}

function render() {
  const open = [...alerts.values()].filter((a) => a.state !== "resolved").sort(urgency);
  list.replaceChildren(...open.map(card));
  document.getElementById("count").textContent = String(open.length);
  document.getElementById("empty").hidden = open.length > 0;
}

function notice(text) {
  const node = document.getElementById("notice");
  node.textContent = text;
  node.hidden = !text;
}

async function acknowledge(id, button) {
  button.disabled = true;
  button.textContent = "Kvitterer …";
  try {
    const response = await fetch("/console/alerts/" + encodeURIComponent(id) + "/ack", {
      method: "POST", headers: { "X-CSRF-Token": csrf }, credentials: "same-origin",
    });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      notice(body.detail || "Kvittering mislykkedes (" + response.status + ").");
      if (response.status === 401) location.reload();
      button.disabled = false;
      button.textContent = "Kvittér";
      return;
    }
    notice("");
    const known = alerts.get(id);
    if (known) {
      // The change also arrives by the feed; showing it now spares the officer the wait.
      Object.assign(known, { state: body.state, acknowledged_by: body.acknowledged_by,
        acknowledged_by_name: body.acknowledged_by_name, acknowledged_at: body.acknowledged_at, state_da: body.state === "acknowledged" ? "Kvitteret" : known.state_da });
      render();
    }
  } catch (err) {
    notice("Ingen forbindelse til serveren; prøv igen.");
    button.disabled = false;
    button.textContent = "Kvittér";
  }
}

function connect() {
  const source = new EventSource("/console/events");
  source.addEventListener("open", () => { live.dataset.state = "live"; live.textContent = "Live"; });
  source.addEventListener("error", () => {
    live.dataset.state = "down";
    live.textContent = "Genforbinder …";
    // The browser gives up only when the server refuses (the sign-in ended): show the sign-in form.
    if (source.readyState === EventSource.CLOSED) location.reload();
  });
  source.addEventListener("snapshot", (e) => {
    alerts.clear();
    for (const a of JSON.parse(e.data)) alerts.set(a.id, a);
    render();
  });
  source.addEventListener("alerts", (e) => {
    for (const a of JSON.parse(e.data)) {
      // A breach taken back leaves the list; the duty officer is told why, not left to wonder.
      const known = alerts.get(a.id);
      if (a.withdrawal_da && known && known.state !== "resolved") {
        notice((a.reference || "Sag") + ": " + a.withdrawal_da);
      }
      alerts.set(a.id, a);
    }
    render();
  });
  // The server dropped this console (it fell behind or lost its listener): start again from a fresh list.
  source.addEventListener("restart", () => { source.close(); setTimeout(connect, 500); });
}

setInterval(() => document.querySelectorAll(".countdown").forEach(countdown), 1000);
connect();
