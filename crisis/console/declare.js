// The declare form: a crisis opened (monitoring) or declared (activated); a refusal's errors[] are shown
// next to the fields they name.

import { $, csv, showProblem, clearProblem } from "./dom.js";
import { api } from "./api.js";

function request(form) {
  const f = new FormData(form);
  const body = {
    title: String(f.get("title")).trim(), summary: String(f.get("summary")).trim(),
    status: f.get("status"), mode: f.get("mode"), tlp: f.get("tlp"),
    jurisdictions: csv(f.get("jurisdictions")), tlprecipients: csv(f.get("tlprecipients")),
    receipt_deadline_s: Number(f.get("receipt_deadline_s")), action_deadline_s: Number(f.get("action_deadline_s")),
  };
  if (body.status === "activated") {
    body.level = Number(f.get("level"));
    body.criteria = f.getAll("criteria");
  }
  const roster = csv(f.get("roster"));
  if (roster.length) body.roster = roster;
  const reason = String(f.get("reason")).trim();
  if (reason) body.reason = reason;
  return body;
}

export function bindDeclare(ctx) {
  const form = $("declare-form");
  const levelField = form.querySelector('[data-field="level"]');
  const syncStatus = () => { levelField.hidden = $("d-status").value !== "activated"; };
  $("d-status").addEventListener("change", syncStatus);
  syncStatus();
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearProblem(form, "err-", "declare-error");
    const submit = form.querySelector('button[type="submit"]');
    submit.disabled = true;
    try {
      const crisis = await api("/v1/crises", { method: "POST", body: request(form) });
      ctx.store.putCrisis(crisis);
      form.reset();
      syncStatus();
      location.hash = `#/crisis/${encodeURIComponent(crisis.id)}`;
    } catch (err) {
      showProblem(form, err, "err-", "declare-error");
    } finally {
      submit.disabled = false;
    }
  });
}
