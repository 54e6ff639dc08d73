// The crisis view: facts, transitions behind a confirmation, the provider x indicator clock, live indicators.

import { $, h, duration, tlpBadge, clockTime, csv, showProblem, clearProblem } from "./dom.js";
import { api, all } from "./api.js";

const MOVES = {
  monitoring: [
    { label: "Activate", to: "activated", level: true, criteria: true },
    { label: "Close", to: "closed", danger: true },
  ],
  activated: [
    { label: "Change level", to: "activated", level: true },
    { label: "Conclude", to: "concluded", danger: true },
  ],
  concluded: [{ label: "Close", to: "closed", danger: true }],
  closed: [],
};
const MATRIX_ROWS = 300; // the newest; the full record is the report

/** Load what the API holds for this crisis (its closed history included) into the store. */
export async function loadCrisis(ctx, id) {
  const path = `/v1/crises/${encodeURIComponent(id)}`;
  ctx.store.putCrisis(await api(path));
  if (ctx.role === "observer") return;
  const [indicators, actions] = await Promise.all([all(`${path}/indicators`), all(`${path}/actions`)]);
  for (const item of indicators) ctx.store.putIndicator(id, item);
  for (const action of actions) ctx.store.apiAction(id, action);
}

export function renderCrisis(ctx, id) {
  const c = ctx.store.crises.get(id);
  if (!c) {
    $("crisis-title").textContent = "Crisis not found (or not yours to read)";
    for (const part of ["crisis-facts", "crisis-actions", "matrix", "indicator-list"]) $(part).replaceChildren();
    $("crisis-actions").dataset.drawn = "";
    return;
  }
  $("crisis-title").replaceChildren(c.title, ...(c.mode === "exercise" ? [" ", h("span", { class: "exercise" }, "EXERCISE")] : []));
  $("crisis-facts").replaceChildren(
    fact("Status", h("span", { class: `status-${c.status}`, id: "crisis-status" }, c.status)),
    fact("Level", h("span", { id: "crisis-level" }, c.level ?? "–")),
    fact("TLP", tlpBadge(c.tlp)),
    fact("Mode", c.mode),
    fact("Jurisdictions", c.jurisdictions.join(", ") || "–"),
    fact("Recipients", c.tlprecipients.join(", ") || "–"),
    fact("Criteria", c.criteria.join(", ") || "–"),
    fact("Declared by", c.created_by),
    fact("Version", c.version),
    fact("Deadlines", `receipt ${duration(c.receipt_deadline_s)}, action ${duration(c.action_deadline_s)}`),
  );
  $("crisis-summary").textContent = c.summary;
  // Rebuilt only when the crisis or the role changed: a button replaced under the pointer loses its click.
  const drawn = `${c.id} ${c.version} ${ctx.role}`;
  if ($("crisis-actions").dataset.drawn !== drawn) {
    $("crisis-actions").dataset.drawn = drawn;
    const moves = ctx.role === "coordinator" ? MOVES[c.status] : [];
    $("crisis-actions").replaceChildren(...moves.map((move) =>
      h("button", { type: "button", class: move.danger ? "danger" : null, onclick: () => confirmMove(ctx, ctx.store.crises.get(c.id), move) }, move.label)));
  }
  $("clock-form").closest("details").hidden = ctx.role !== "coordinator" || c.status === "closed";
  if (!$("clock-form").contains(document.activeElement)) {
    $("c-roster").value = c.roster.join(", ");
    $("c-receipt").value = c.receipt_deadline_s;
    $("c-action").value = c.action_deadline_s;
  }
  renderMatrix(ctx, c);
  renderFeed(ctx, c);
}

function fact(name, value) {
  return h("div", {}, h("dt", {}, name), h("dd", {}, value));
}

function indicatorsOf(ctx, c) {
  const list = ctx.store.indicators.get(c.id);
  return list ? [...list.values()].sort((a, b) => Date.parse(b.shared_at) - Date.parse(a.shared_at)) : [];
}

function providersOf(ctx, c) {
  const orgs = new Set(c.roster);
  for (const key of (ctx.store.answers.get(c.id) || new Map()).keys()) orgs.add(key.split(" ")[0]);
  return [...orgs].sort();
}

/** The clock of one provider on one indicator, in words: the state is never told by colour alone. */
export function cellState(ctx, c, org, item, now) {
  const answer = ctx.store.answer(c.id, org, item.id);
  const shared = Date.parse(item.shared_at);
  const since = (t) => `+${duration((t - shared) / 1000)}`;
  const expected = c.roster.includes(org);
  if (answer.acted_at) return { state: "acted", text: `acted: ${answer.outcome} (${since(answer.acted_at)})` };
  const deadline = answer.received_at ? "action" : "receipt";
  const due = shared + 1000 * (deadline === "action" ? c.action_deadline_s : c.receipt_deadline_s);
  const prefix = answer.received_at ? `received (${since(answer.received_at)}); action ` : "receipt ";
  if (!expected || item.retracted || c.status === "closed") {
    return { state: answer.received_at ? "received" : "none", text: answer.received_at ? `received (${since(answer.received_at)})` : "no answer" };
  }
  if (ctx.store.isOverdue(c.id, org, item.id, deadline) || now >= due) {
    return { state: "overdue", text: `${prefix}OVERDUE by ${duration((now - due) / 1000)}` };
  }
  return { state: answer.received_at ? "received" : "due", text: `${prefix}due in ${duration((due - now) / 1000)}` };
}

export function renderMatrix(ctx, c) {
  const items = indicatorsOf(ctx, c).filter((i) => !i.retracted).slice(0, MATRIX_ROWS);
  const orgs = providersOf(ctx, c);
  const now = Date.now();
  $("matrix-empty").hidden = items.length > 0;
  if (!items.length) { $("matrix").replaceChildren(); return; }
  const head = h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Indicator"),
    ...orgs.map((org) => h("th", { scope: "col" }, org, c.roster.includes(org) ? "" : " (not expected)"))));
  const body = h("tbody", {}, ...items.map((item) => h("tr", { "data-indicator": item.id },
    h("th", { scope: "row" }, `${item.kind}: ${item.value}`),
    ...orgs.map((org) => {
      const { state, text } = cellState(ctx, c, org, item, now);
      return h("td", { class: `cell cell-${state}`, "data-org": org, "data-state": state }, text);
    }))));
  $("matrix").replaceChildren(h("caption", { class: "sr-only" }, "Providers' receipts and actions per indicator"), head, body);
}

export function renderFeed(ctx, c) {
  const items = indicatorsOf(ctx, c).slice(0, 500);
  $("indicator-list").replaceChildren(...items.map((item) => {
    const li = h("li", { class: item.fresh ? "new" : null, "data-indicator": item.id },
      h("span", { class: "mono" }, `${item.kind}: ${item.value}`), " — shared by ", item.shared_by, " at ",
      clockTime(item.shared_at), item.retracted ? " (retracted)" : "");
    item.fresh = false;
    return li;
  }));
}

/** Open the confirmation dialog for one transition; the reason is required. */
function confirmMove(ctx, c, move) {
  const dialog = $("confirm"), form = $("confirm-form");
  const opener = document.activeElement;
  form.reset();
  clearProblem(form, "xerr-", "confirm-error");
  $("confirm-title").textContent = `${move.label}: ${c.title}`;
  $("confirm-text").textContent = `From ${c.status}${c.level ? ` (level ${c.level})` : ""} to ${move.to}. This is recorded with your organisation and reason.`;
  $("confirm-level-field").hidden = !move.level;
  $("confirm-criteria-field").hidden = !move.criteria;
  if (move.level) $("confirm-level").value = String(c.level || 1);
  form.onsubmit = async (event) => {
    event.preventDefault();
    const reason = $("confirm-reason").value.trim();
    if (!reason) {
      showProblem(form, { errors: [{ field: "reason", message: "a reason is required" }] }, "xerr-", "confirm-error");
      return;
    }
    const body = { to: move.to, expected_version: c.version, reason };
    if (move.level) body.level = Number($("confirm-level").value);
    if (move.criteria) body.criteria = [...form.querySelectorAll('input[name="criteria"]:checked')].map((b) => b.value);
    $("confirm-ok").disabled = true;
    try {
      ctx.store.putCrisis(await api(`/v1/crises/${encodeURIComponent(c.id)}/transitions`, { method: "POST", body }));
      dialog.close();
    } catch (err) {
      showProblem(form, err, "xerr-", "confirm-error");
    } finally {
      $("confirm-ok").disabled = false;
    }
  };
  $("confirm-cancel").onclick = () => dialog.close();
  dialog.onclose = () => { if (opener && opener.isConnected) opener.focus(); };
  dialog.showModal();
  (move.level ? $("confirm-level") : $("confirm-reason")).focus();
}

export function bindClockForm(ctx) {
  const form = $("clock-form");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const c = ctx.store.crises.get(ctx.current);
    if (!c) return;
    const body = { expected_version: c.version, reason: $("c-reason").value.trim() };
    // Only what was changed is sent: an untouched field keeps its value.
    const roster = csv($("c-roster").value);
    if (roster.join(",") !== c.roster.join(",")) body.roster = roster;
    for (const [name, input] of [["receipt_deadline_s", "c-receipt"], ["action_deadline_s", "c-action"]]) {
      if ($(input).value && Number($(input).value) !== c[name]) body[name] = Number($(input).value);
    }
    if (!body.reason) {
      showProblem(form, { errors: [{ field: "reason", message: "a reason is required" }] }, "cerr-", "clock-error");
      return;
    }
    try {
      ctx.store.putCrisis(await api(`/v1/crises/${encodeURIComponent(c.id)}/clock`, { method: "POST", body }));
      clearProblem(form, "cerr-", "clock-error");
      $("c-reason").value = "";
    } catch (err) {
      showProblem(form, err, "cerr-", "clock-error");
    }
  });
}
