// What the console knows, folded from the stream's events and the API's lists: crises, indicators,
// provider answers and open overdue deadlines. Every event is applied once (by id).

export class Store {
  constructor() {
    this.crises = new Map();      // id -> crisis (as GET /v1/crises/{id})
    this.indicators = new Map();  // crisis id -> Map(indicator id -> {id, kind, value, canonical, shared_by, shared_at, retracted})
    this.answers = new Map();     // crisis id -> Map(`${org} ${indicator}` -> {received_at, acted_at (ms), outcome, note})
    this.overdue = new Map();     // crisis id -> Map(`${org} ${indicator} ${deadline}` -> data)
    this.seen = new Set();
    this.listeners = new Set();
  }

  changed(crisisId, kind) {
    for (const listen of this.listeners) listen(crisisId, kind);
  }

  putCrisis(crisis) {
    const known = this.crises.get(crisis.id);
    if (known && known.version >= crisis.version) return; // the same crisis again (the stream echoing a write)
    this.crises.set(crisis.id, crisis);
    this.changed(crisis.id, "crisis");
  }

  of(map, crisisId) {
    if (!map.has(crisisId)) map.set(crisisId, new Map());
    return map.get(crisisId);
  }

  putIndicator(crisisId, item, fresh = false) {
    const list = this.of(this.indicators, crisisId);
    const known = list.get(item.indicator_id);
    list.set(item.indicator_id, {
      id: item.indicator_id, kind: item.kind, value: item.value ?? item.canonical, canonical: item.canonical,
      shared_by: item.shared_by, shared_at: item.shared_at, tlp: item.tlp,
      retracted: Boolean(item.retracted || (known && known.retracted)), fresh: fresh && !known,
    });
    this.changed(crisisId, "indicator");
  }

  putAnswer(crisisId, action) {
    const answers = this.of(this.answers, crisisId);
    const key = `${action.provider_org} ${action.indicator_id}`;
    const answer = answers.get(key) || { received_at: null, acted_at: null, outcome: null, note: "" };
    const at = Date.parse(action.at);
    if (!answer.received_at || at < answer.received_at) answer.received_at = at;
    if (action.outcome !== "received" && (!answer.acted_at || at < answer.acted_at)) {
      Object.assign(answer, { acted_at: at, outcome: action.outcome, note: action.note || "" });
    }
    answers.set(key, answer);
    // A late answer withdraws the overdue deadlines it meets.
    const overdue = this.of(this.overdue, crisisId);
    overdue.delete(`${key} receipt`);
    if (action.outcome !== "received") overdue.delete(`${key} action`);
    this.changed(crisisId, "answer");
  }

  putOverdue(crisisId, data) {
    const answer = this.answer(crisisId, data.provider_org, data.indicator_id);
    const met = data.deadline === "receipt" ? answer.received_at : answer.acted_at;
    if (!met) this.of(this.overdue, crisisId).set(`${data.provider_org} ${data.indicator_id} ${data.deadline}`, data);
    this.changed(crisisId, "overdue");
  }

  answer(crisisId, org, indicatorId) {
    return this.of(this.answers, crisisId).get(`${org} ${indicatorId}`) || { received_at: null, acted_at: null, outcome: null };
  }

  isOverdue(crisisId, org, indicatorId, deadline) {
    return this.of(this.overdue, crisisId).has(`${org} ${indicatorId} ${deadline}`);
  }

  /** One stream event; false when it was seen before. */
  apply(event) {
    if (this.seen.has(event.id)) return false;
    this.seen.add(event.id);
    const data = event.data || {};
    const crisisId = event.subject;
    if (data.crisis && event.type.startsWith("crisis.")) this.putCrisis(data.crisis);
    else if (event.type === "indicator.shared") this.putIndicator(crisisId, { ...data, shared_at: event.time, tlp: event.tlp }, true);
    else if (event.type === "indicator.retracted") {
      const known = this.of(this.indicators, crisisId).get(data.indicator_id);
      if (known) known.retracted = true;
      this.changed(crisisId, "indicator");
    } else if (event.type === "action.reported") this.putAnswer(crisisId, data);
    else if (event.type === "clock.overdue") this.putOverdue(crisisId, data);
    return true;
  }

  apiAction(crisisId, action) {
    if (this.seen.has(action.event_id)) return;
    this.seen.add(action.event_id);
    this.putAnswer(crisisId, action);
  }

  overdueCount(crisisId) {
    return this.of(this.overdue, crisisId).size;
  }

  indicatorCount(crisisId) {
    return [...this.of(this.indicators, crisisId).values()].filter((i) => !i.retracted).length;
  }
}
