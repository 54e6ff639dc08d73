// Building DOM nodes from data: every server string becomes a text node, never markup.

export const $ = (id) => document.getElementById(id);

/** h("td", {class: "x", "data-id": id}, "text", child) — attributes are set one by one, children as text. */
export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** "1:05:09", "4:07", "0:03" */
export function duration(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const hh = Math.floor(s / 3600), mm = Math.floor((s % 3600) / 60), ss = s % 60;
  const pad = (n) => String(n).padStart(2, "0");
  return hh ? `${hh}:${pad(mm)}:${pad(ss)}` : `${mm}:${pad(ss)}`;
}

export function age(since, now = Date.now()) {
  const s = Math.max(0, (now - since) / 1000);
  if (s < 3600) return duration(s);
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d`;
}

export function tlpBadge(tlp) {
  return h("span", { class: `tlp tlp-${tlp}` }, `TLP:${String(tlp).toUpperCase()}`);
}

export function clockTime(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : d.toISOString().slice(11, 19) + " UTC";
}

export const csv = (text) => String(text || "").split(",").map((s) => s.trim()).filter(Boolean);

/** Show a problem's errors[] next to the fields they name; what names no field goes to the form's line. */
export function showProblem(form, error, prefix, generalId) {
  clearProblem(form, prefix, generalId);
  const general = [];
  for (const item of error.errors || []) {
    const field = String(item.field || "").split(".")[0];
    const slot = field && document.getElementById(prefix + field);
    if (slot && form.contains(slot)) {
      slot.textContent = item.message;
      const box = form.querySelector(`[data-field="${CSS.escape(field)}"]`);
      const control = box && (box.matches("fieldset") ? box : box.querySelector("input, select, textarea"));
      if (control) control.setAttribute("aria-invalid", "true");
    } else {
      general.push(item.field ? `${item.field}: ${item.message}` : item.message);
    }
  }
  if (!error.errors || !error.errors.length || general.length) {
    $(generalId).textContent = general.length ? general.join("; ") : error.message;
  }
  const first = form.querySelector('[aria-invalid="true"]');
  if (first) (first.matches("fieldset") ? first.querySelector("input") : first).focus();
}

export function clearProblem(form, prefix, generalId) {
  for (const slot of form.querySelectorAll(`[id^="${prefix}"]`)) slot.textContent = "";
  for (const bad of form.querySelectorAll('[aria-invalid="true"]')) bad.removeAttribute("aria-invalid");
  $(generalId).textContent = "";
}
