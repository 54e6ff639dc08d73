// The duty console: sign in with a key, then the board, a crisis, the declare form or the provider inbox,
// all kept current by the live stream.

import { $ } from "./dom.js";
import { api, all, getKey, setKey, dropKey, ApiError } from "./api.js";
import { Store } from "./store.js";
import { Stream } from "./stream.js";
import { renderBoard, tickBoard } from "./board.js";
import { loadCrisis, renderCrisis, renderMatrix, renderFeed, bindClockForm } from "./crisis.js";
import { bindDeclare } from "./declare.js";
import { renderInbox } from "./inbox.js";

const VIEWS = ["login", "board", "declare", "crisis", "inbox"];
const ctx = { store: new Store(), stream: null, org: "", role: "", view: "login", current: null };

function show(view) {
  ctx.view = view;
  for (const name of VIEWS) $(`view-${name}`).hidden = name !== view;
  for (const name of ["board", "declare", "inbox"]) {
    const link = $(`nav-${name}`);
    if (name === view) link.setAttribute("aria-current", "page"); else link.removeAttribute("aria-current");
  }
}

async function route() {
  if (!getKey()) { show("login"); $("login-key").focus(); return; }
  const [, name, id] = location.hash.split("/");
  if (name === "crisis" && id) {
    ctx.current = decodeURIComponent(id);
    show("crisis");
    renderCrisis(ctx, ctx.current);
    $("crisis-error").textContent = "";
    try {
      await loadCrisis(ctx, ctx.current);
    } catch (err) {
      // 404: not there, or not this key's to read (the same answer); the view says so itself.
      if (!(err instanceof ApiError)) throw err;
      if (err.status !== 404) $("crisis-error").textContent = `could not load this crisis: ${err.message}`;
    }
    renderCrisis(ctx, ctx.current);
  } else if (name === "declare") {
    show("declare");
  } else if (name === "inbox" || (!name && ctx.role === "provider")) {
    show("inbox");
    renderInbox(ctx);
  } else {
    show("board");
    renderBoard(ctx);
  }
  $("main").focus({ preventScroll: true });
}

// Many events arrive together (a backfill, a batch): draw once for them all, not once per event. A timer
// rather than an animation frame, so that a console in a background tab stays current too.
let pending = new Set(), scheduled = false;
function changed(crisisId, kind) {
  pending.add(kind);
  if (scheduled) return;
  scheduled = true;
  setTimeout(() => {
    const kinds = pending;
    pending = new Set();
    scheduled = false;
    if (ctx.view === "board") renderBoard(ctx);
    else if (ctx.view === "inbox") renderInbox(ctx);
    else if (ctx.view === "crisis") {
      const c = ctx.store.crises.get(ctx.current);
      if (kinds.has("crisis")) renderCrisis(ctx, ctx.current);
      else if (c) { renderMatrix(ctx, c); renderFeed(ctx, c); }
    }
  }, 30);
}

function tick() {
  if (ctx.view === "board") tickBoard();
  else if (ctx.view === "inbox") renderInbox(ctx);
  else if (ctx.view === "crisis") {
    const c = ctx.store.crises.get(ctx.current);
    if (c) renderMatrix(ctx, c);
  }
}

function connection(state, text) {
  $("conn").dataset.state = state;
  $("conn").textContent = text;
}

async function start() {
  connection("connecting", "connecting");
  try {
    for (const crisis of await all("/v1/crises")) ctx.store.putCrisis(crisis);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      dropKey();
      $("login-error").textContent = "This key was refused (unknown, expired or revoked).";
      connection("offline", "not connected");
      show("login");
      return;
    }
    connection("offline", err.message);
  }
  $("signout").hidden = false;
  const { stream_url: url } = await api("/console/config.json");
  ctx.stream = new Stream({
    url, key: getKey(),
    onEvent: (event) => ctx.store.apply(event),
    onControl: (message) => {
      if (message.type === "subscribed") {
        const first = !ctx.role;
        Object.assign(ctx, { org: message.org, role: message.role });
        $("whoami").textContent = `${message.org} (${message.role})`;
        $("nav-declare").hidden = !["coordinator", "authority"].includes(message.role);
        $("nav-inbox").hidden = message.role !== "provider";
        if (first) route();
      } else if (message.type === "gap") {
        connection("live", `live; events were lost before this point (${message.reason})`);
      }
    },
    onState: connection,
  });
  ctx.stream.start();
  route();
}

$("login-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const key = $("login-key").value.trim();
  if (!key) { $("login-error").textContent = "Paste an API key."; return; }
  $("login-key").value = "";
  $("login-error").textContent = "";
  setKey(key);
  start();
});
$("signout").addEventListener("click", () => {
  dropKey();
  if (ctx.stream) ctx.stream.stop();
  location.hash = "";
  location.reload();
});
window.addEventListener("hashchange", route);
ctx.store.listeners.add(changed);
bindDeclare(ctx);
bindClockForm(ctx);
setInterval(tick, 1000);
if (getKey()) start(); else route();
