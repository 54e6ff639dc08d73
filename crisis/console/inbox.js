// The provider inbox: indicators of the crises the key's organisation reads, with one-click answers.

import { $, h, clockTime, duration } from "./dom.js";
import { api } from "./api.js";

const ANSWERS = [["received", "Received"], ["removed", "Removed"], ["disagree", "Disagree"]];
const rows = new Map(); // indicator id -> its <tr>: kept across renders, so a button never moves under a click

export function renderInbox(ctx) {
  const items = [];
  for (const [crisisId, list] of ctx.store.indicators) {
    const c = ctx.store.crises.get(crisisId);
    if (!c || c.status === "closed") continue;
    for (const item of list.values()) if (!item.retracted) items.push({ c, item });
  }
  items.sort((a, b) => Date.parse(b.item.shared_at) - Date.parse(a.item.shared_at));
  const now = Date.now();
  const wanted = items.slice(0, 500).map(({ c, item }) => {
    const tr = rows.get(item.id) || row(ctx, c, item);
    rows.set(item.id, tr);
    tr.querySelector('[data-col="answer"]').textContent = answerText(ctx, c, item, now);
    return tr;
  });
  const body = $("inbox-rows");
  const keep = new Set(wanted);
  for (const [id, tr] of rows) if (!keep.has(tr)) { tr.remove(); rows.delete(id); }
  wanted.forEach((tr, index) => { if (body.children[index] !== tr) body.insertBefore(tr, body.children[index] || null); });
  $("inbox-empty").hidden = items.length > 0;
}

function row(ctx, c, item) {
  return h("tr", { "data-indicator": item.id },
    h("td", {}, c.title, c.mode === "exercise" ? " (EXERCISE)" : ""),
    h("td", { class: "mono" }, `${item.kind}: ${item.value}`),
    h("td", {}, clockTime(item.shared_at), " by ", item.shared_by),
    h("td", { "data-col": "answer" }),
    h("td", { class: "buttons" }, ...ANSWERS.map(([outcome, label]) =>
      h("button", {
        type: "button", "data-answer": `${item.id} ${outcome}`, "aria-label": `${label}: ${item.kind} ${item.value}`,
        onclick: (event) => report(ctx, c, item, outcome, event.currentTarget),
      }, label))));
}

function answerText(ctx, c, item, now) {
  const answer = ctx.store.answer(c.id, ctx.org, item.id);
  if (answer.acted_at) return answer.outcome;
  if (answer.received_at) return "received";
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
