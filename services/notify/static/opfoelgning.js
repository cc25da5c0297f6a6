// The follow-up list: "Vis telefon" fetches the victim's name and phone (a read intake logs in the officer's
// name) and "Udført" records the follow-up, both as the signed-in officer. Every value from the server goes
// in by textContent, never as markup; nothing fetched is kept beyond the page.
"use strict";

const csrf = document.querySelector('meta[name="csrf-token"]').content;
const announce = document.getElementById("announce");

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

function say(text) {
  announce.textContent = "";
  window.setTimeout(() => { announce.textContent = text; }, 50);
}

// The button pressed is gone: the focus goes to what replaced it, not to the top of the page.
function keepFocus(node) {
  if (node.tagName !== "A") node.setAttribute("tabindex", "-1");
  node.focus();
}

// POSTs to the row's follow-up; the answer's JSON, or an Error carrying the server's Danish sentence.
async function post(row, what) {
  const url = "/console/opfoelgning/" + encodeURIComponent(row.dataset.deadline) + "/" + what;
  let response;
  try {
    response = await fetch(url, { method: "POST", headers: { "X-CSRF-Token": csrf }, credentials: "same-origin",
                                  cache: "no-store" });
  } catch (exc) {
    throw new Error("Serveren svarer ikke. Prøv igen om et øjeblik.");
  }
  let body = {};
  try { body = await response.json(); } catch (exc) { body = {}; }
  if (!response.ok) throw new Error(body.detail || "Det lykkedes ikke. Genindlæs siden, og prøv igen.");
  return body;
}

async function showPhone(button) {
  const row = button.closest("tr");
  const out = row.querySelector(".phone");
  const reference = row.querySelector(".ref").textContent;
  button.disabled = true;
  out.replaceChildren();
  try {
    const found = await post(row, "telefon");
    if (found.name) out.append(el("span", "name", found.name));
    if (found.phone) {
      const call = el("a", "number", found.phone);
      call.href = "tel:" + found.phone.replace(/[^+0-9]/g, "");
      out.append(call);
    }
    if (found.text) out.append(el("span", "note", found.text));
    if (found.logged) out.append(el("span", "note", found.logged));
    out.hidden = false;
    button.hidden = true;
    say(reference + ": " + [found.name, found.phone, found.text].filter(Boolean).join(", "));
    keepFocus(out.querySelector("a") || out);
  } catch (exc) {
    out.append(el("span", "failed", exc.message));
    out.hidden = false;
    button.disabled = false;
    say(reference + ": " + exc.message);
  }
}

// "Udført" cannot be taken back, so it takes two presses: the first asks, the second records. Left
// unanswered for 10 s, the question goes away again.
function askFirst(button, reference) {
  const label = button.firstChild;
  label.textContent = "Bekræft: udført";
  button.dataset.confirm = "1";
  say(reference + ": tryk igen for at registrere opfølgningen som udført");
  button.confirmTimer = setTimeout(() => {
    label.textContent = "Udført";
    delete button.dataset.confirm;
  }, 10000);
}

async function markDone(button) {
  const row = button.closest("tr");
  const result = row.querySelector(".result");
  const reference = row.querySelector(".ref").textContent;
  if (!button.dataset.confirm) {
    askFirst(button, reference);
    return;
  }
  clearTimeout(button.confirmTimer);
  delete button.dataset.confirm;
  button.firstChild.textContent = "Udført";
  button.disabled = true;
  result.className = "result";
  result.textContent = "Registrerer …";
  try {
    const answer = await post(row, "udfoert");
    row.classList.add("registered");
    button.hidden = true;
    result.textContent = "Registreret";
    result.title = answer.text || "";
    keepFocus(result);
    say(reference + ": " + (answer.text || "registreret"));
  } catch (exc) {
    result.className = "result failed";
    result.textContent = exc.message;
    button.disabled = false;
    say(reference + ": " + exc.message);
  }
}

const table = document.getElementById("followups");
if (table) {
  table.addEventListener("click", (event) => {
    const button = event.target.closest("button");
    if (!button || button.disabled) return;
    if (button.classList.contains("show-phone")) showPhone(button);
    else if (button.classList.contains("done")) markDone(button);
  });
}
