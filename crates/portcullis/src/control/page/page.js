// The control page: asks for a token, keeps it in this tab's
// sessionStorage, sends it as a bearer header on every API call, and
// polls the status, sessions and bans. Everything shown comes from the
// server and may be hostile (user names, paths): it is only ever set
// with textContent, never parsed as HTML.
"use strict";

const KEY = "portcullis-control-token";
const POLL_MS = 2000;
let timer = null;

const $ = (id) => document.getElementById(id);

function token() {
  return sessionStorage.getItem(KEY);
}

function say(text, ok) {
  const m = $("message");
  m.textContent = text || "";
  m.className = ok ? "ok" : "";
}

// One API call; the parsed JSON, or an Error with the server's word.
async function api(method, path, body) {
  const init = { method, headers: { Authorization: "Bearer " + token() }, cache: "no-store" };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const r = await fetch(path, init);
  let data = null;
  try {
    data = await r.json();
  } catch (_) {
    data = null;
  }
  if (r.status === 401) {
    signOut("The token was refused.");
    throw new Error("unauthorized");
  }
  if (!r.ok) {
    throw new Error((data && data.error) || "HTTP " + r.status);
  }
  return data;
}

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function bytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return (i ? n.toFixed(1) : String(n)) + " " + units[i];
}

function secs(s) {
  s = Math.floor(s);
  if (s < 60) return s + "s";
  if (s < 3600) return Math.floor(s / 60) + "m" + (s % 60) + "s";
  if (s < 86400) return Math.floor(s / 3600) + "h" + Math.floor((s % 3600) / 60) + "m";
  return Math.floor(s / 86400) + "d" + Math.floor((s % 86400) / 3600) + "h";
}

function button(label, cls, action) {
  const b = el("button", label, cls);
  b.type = "button";
  b.addEventListener("click", async () => {
    b.disabled = true;
    try {
      await action();
      await refresh();
    } catch (e) {
      if (e.message !== "unauthorized") say(label + ": " + e.message);
      b.disabled = false;
    }
  });
  return b;
}

function emptyRow(tbody, cols, text) {
  const tr = document.createElement("tr");
  const td = el("td", text, "empty");
  td.colSpan = cols;
  tr.appendChild(td);
  tbody.appendChild(tr);
}

function showStatus(s) {
  $("node").textContent = s.node + " · " + s.version;
  const dl = $("status");
  dl.replaceChildren();
  const rows = [
    ["Phase", s.phase],
    ["Uptime", secs(s.uptime_secs)],
    ["Sessions", s.sessions],
    ["Transfers", s.transfers],
    ["Bans", s.bans],
    ["Listeners", (s.listeners || []).join(", ")],
  ];
  if (s.certificate && s.certificate.expires) {
    rows.push(["Certificate expires", s.certificate.expires]);
  }
  for (const [k, v] of rows) {
    dl.appendChild(el("dt", k));
    dl.appendChild(el("dd", v));
  }
}

function showSessions(answer) {
  const list = answer.sessions;
  const tbody = $("sessions");
  tbody.replaceChildren();
  $("session-count").textContent = "(" + list.length + ")" + (answer.partial ? " partial: " + answer.note : "");
  if (list.length === 0) emptyRow(tbody, 10, "No sessions.");
  for (const s of list) {
    const tr = document.createElement("tr");
    tr.dataset.session = s.id;
    tr.appendChild(el("td", s.id, "mono"));
    tr.appendChild(el("td", s.node, "node"));
    tr.appendChild(el("td", s.user === null ? "(not logged in)" : s.user, "user"));
    tr.appendChild(el("td", s.client, "mono"));
    tr.appendChild(el("td", s.since));
    tr.appendChild(el("td", secs(s.idle_secs)));
    tr.appendChild(el("td", s.command || ""));
    const t = s.transfer;
    tr.appendChild(
      el("td", t ? (t.direction === "upload" ? "↑ " : "↓ ") + t.path + " · " + bytes(t.bytes) : "", "path transfer"),
    );
    tr.appendChild(el("td", t ? bytes(t.rate) + "/s" : ""));
    const td = document.createElement("td");
    td.appendChild(
      button("Kick", "kick", () => api("POST", "/v1/sessions/" + encodeURIComponent(s.id) + "/kick").then(() => say("Kicked session " + s.id + ".", true))),
    );
    tr.appendChild(td);
    tbody.appendChild(tr);
  }
}

function showBans(b) {
  const tbody = $("bans");
  tbody.replaceChildren();
  $("ban-count").textContent = "(" + b.bans.length + ")";
  if (b.bans.length === 0) emptyRow(tbody, 5, "No bans.");
  for (const ban of b.bans) {
    const tr = document.createElement("tr");
    tr.dataset.address = ban.address;
    tr.appendChild(el("td", ban.address, "mono"));
    tr.appendChild(el("td", ban.failures));
    tr.appendChild(el("td", ban.until));
    tr.appendChild(el("td", secs(ban.left_secs)));
    const td = document.createElement("td");
    td.appendChild(
      button("Unban", "unban", () => api("DELETE", "/v1/bans/" + encodeURIComponent(ban.address)).then(() => say("Unbanned " + ban.address + ".", true))),
    );
    tr.appendChild(td);
    tbody.appendChild(tr);
  }
  $("exempt").textContent = b.exempt.length ? "Never banned: " + b.exempt.join(", ") : "";
}

async function refresh() {
  if (!token()) return;
  try {
    const [status, sessions, bans] = await Promise.all([
      api("GET", "/v1/status"),
      api("GET", "/v1/sessions"),
      api("GET", "/v1/bans"),
    ]);
    showStatus(status);
    showSessions(sessions);
    showBans(bans);
    $("panel").hidden = false;
    $("updated").textContent = "Updated " + new Date().toLocaleTimeString() + ", every " + POLL_MS / 1000 + "s.";
  } catch (e) {
    if (e.message !== "unauthorized") say("Cannot reach the server: " + e.message);
  }
}

function signIn() {
  $("login").hidden = true;
  $("logout").hidden = false;
  refresh();
  if (timer === null) timer = setInterval(refresh, POLL_MS);
}

function signOut(why) {
  sessionStorage.removeItem(KEY);
  if (timer !== null) clearInterval(timer);
  timer = null;
  $("panel").hidden = true;
  $("login").hidden = false;
  $("logout").hidden = true;
  say(why || "");
}

document.addEventListener("DOMContentLoaded", () => {
  $("login").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const t = $("token").value.trim();
    $("token").value = "";
    if (!t) return;
    sessionStorage.setItem(KEY, t);
    say("");
    signIn();
  });
  $("logout").addEventListener("click", () => signOut(""));
  if (token()) signIn();
});
