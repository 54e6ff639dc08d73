// The provider inbox: indicators of the crises the key's organisation reads, with one-click answers.

import { $, h, clockTime, duration } from "./dom.js";
import { api } from "./api.js";

const ANSWERS = [["received", "Received"], ["removed", "Removed"], ["disagree", "Disagree"]];

export function renderInbox(ctx) {
  const rows = [];
  const now = Date.now();
  for (const [crisisId, list] of ctx.store.indicators) {
    const c = ctx.store.crises.get(crisisId);
    if (!c || c.status === "closed") continue;
    for (const item of list.values()) if (!item.retracted) rows.push({ c, item });
  }
  rows.sort((a, b) => Date.parse(b.item.shared_at) - Date.parse(a.item.shared_at));
  const focused = document.activeElement && document.activeElement.dataset.answer;
  $("inbox-rows").replaceChildren(...rows.slice(0, 500).map(({ c, item }) => row(ctx, c, item, now)));
  $("inbox-empty").hidden = rows.length > 0;
  // Re-rendering replaces the buttons: keep the keyboard where it was.
  if (focused) document.querySelector(`[data-answer="${CSS.escape(focused)}"]`)?.focus();
}

function row(ctx, c, item, now) {
  const answer = ctx.store.answer(c.id, ctx.org, item.id);
  const mine = answer.acted_at ? `${answer.outcome}` : answer.received_at ? "received" : ownClock(ctx, c, item, now);
  return h("tr", { "data-indicator": item.id },
    h("td", {}, c.title, c.mode === "exercise" ? " (EXERCISE)" : ""),
    h("td", { class: "mono" }, `${item.kind}: ${item.value}`),
    h("td", {}, clockTime(item.shared_at), " by ", item.shared_by),
    h("td", { "data-col": "answer" }, mine),
    h("td", { class: "buttons" }, ...ANSWERS.map(([outcome, label]) =>
      h("button", {
        type: "button", "data-answer": `${item.id} ${outcome}`, "aria-label": `${label}: ${item.kind} ${item.value}`,
        onclick: (event) => report(ctx, c, item, outcome, event.currentTarget),
      }, label))));
}

function ownClock(ctx, c, item, now) {
  if (!c.roster.includes(ctx.org)) return "no answer yet";
  const due = Date.parse(item.shared_at) + 1000 * c.receipt_deadline_s;
  if (ctx.store.isOverdue(c.id, ctx.org, item.id, "receipt") || now >= due) return `receipt OVERDUE by ${duration((now - due) / 1000)}`;
  return `receipt due in ${duration((due - now) / 1000)}`;
}

async function report(ctx, c, item, outcome, button) {
  button.disabled = true;
  $("inbox-error").textContent = "";
  try {
    const action = await api(`/v1/crises/${encodeURIComponent(c.id)}/actions`, {
      method: "POST", body: { indicator_id: item.id, outcome },
    });
    ctx.store.apiAction(c.id, action);
  } catch (err) {
    $("inbox-error").textContent = `${item.kind} ${item.value}: ${err.message}`;
  } finally {
    button.disabled = false;
  }
}
