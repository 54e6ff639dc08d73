// The board: every crisis the key may read, with its counts, updated live and ageing every second.

import { $, h, age, tlpBadge } from "./dom.js";

export function renderBoard(ctx) {
  const crises = [...ctx.store.crises.values()].sort(
    (a, b) => b.created_at.localeCompare(a.created_at) || b.id.localeCompare(a.id),
  );
  const now = Date.now();
  $("board-rows").replaceChildren(...crises.map((c) => row(ctx, c, now)));
  $("board-empty").hidden = crises.length > 0;
}

function row(ctx, c, now) {
  const overdue = ctx.store.overdueCount(c.id);
  return h("tr", { "data-crisis": c.id },
    h("td", {}, h("a", { href: `#/crisis/${encodeURIComponent(c.id)}` }, c.title),
      c.mode === "exercise" ? [" ", h("span", { class: "exercise" }, "EXERCISE")] : null),
    h("td", {}, tlpBadge(c.tlp)),
    h("td", { "data-col": "mode" }, c.mode),
    h("td", { "data-col": "status", class: `status-${c.status}` }, c.status),
    h("td", { "data-col": "level" }, c.level ?? "–"),
    h("td", { "data-col": "age", "data-since": c.created_at }, age(Date.parse(c.created_at), now)),
    h("td", { "data-col": "indicators" }, ctx.store.indicatorCount(c.id)),
    h("td", { "data-col": "overdue", class: overdue ? "count-late" : null }, overdue ? `${overdue} overdue` : "none"),
  );
}

export function tickBoard() {
  const now = Date.now();
  for (const cell of document.querySelectorAll('#board-rows [data-col="age"]')) {
    cell.textContent = age(Date.parse(cell.dataset.since), now);
  }
}
