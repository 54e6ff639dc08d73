// The HTTP API with the key from this tab's sessionStorage; a refusal raises ApiError with the problem.

const KEY = "crisis-key";

export const getKey = () => sessionStorage.getItem(KEY) || "";
export const setKey = (key) => sessionStorage.setItem(KEY, key);
export const dropKey = () => sessionStorage.removeItem(KEY);

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.code = problem.code || "";
    this.errors = Array.isArray(problem.errors) ? problem.errors : [];
  }
}

export async function api(path, { method = "GET", body } = {}) {
  const headers = { Authorization: `Bearer ${getKey()}`, Accept: "application/json" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    // A retried write carries the same key, so it never makes a second event.
    headers["Idempotency-Key"] = crypto.randomUUID();
  }
  let response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (err) {
    throw new ApiError(0, { detail: "the API cannot be reached" });
  }
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

/** Every item of a paged list, following `next`. */
export async function all(path) {
  const items = [];
  for (let next = path; next; ) {
    const page = await api(next);
    items.push(...page.items);
    next = page.next;
  }
  return items;
}
