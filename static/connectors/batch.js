// The batch page: polls the batch's small JSON document and updates the progress bar, the
// counts and the rows as results arrive. Without JavaScript the page shows the state it was
// rendered with, and its Refresh link reloads it.
(function () {
  "use strict";
  const root = document.getElementById("batch");
  if (!root) return;
  const url = root.dataset.ccBatchProgress;
  const bar = root.querySelector("progress");
  const body = root.querySelector("[data-cc-batch-items]");
  const INTERVAL_MS = 1000;

  function cell(text) {
    const td = document.createElement("td");
    td.textContent = text;
    return td;
  }

  function row(item) {
    const tr = document.createElement("tr");
    tr.dataset.ccBatchItem = item.id;
    const name = document.createElement("td");
    const link = document.createElement("a");
    link.href = item.url;
    link.textContent = item.connector;
    name.appendChild(link);
    tr.appendChild(name);
    tr.appendChild(cell(item.state_label));
    const result = document.createElement("td");
    if (item.state === "done") {
      // As the server draws it (audit_tags.outcome_badge): the label, then the code beside it.
      const wrap = document.createElement("span");
      wrap.className = "cc-outcome text-nowrap";
      wrap.dataset.ccOutcome = item.outcome;
      const badge = document.createElement("span");
      badge.className = "badge " + (item.ok ? "text-bg-success" : "text-bg-danger");
      badge.textContent = item.outcome_label || item.outcome;
      const code = document.createElement("code");
      code.className = "small text-body-secondary";
      code.textContent = item.outcome;
      wrap.append(badge, " ", code);
      result.appendChild(wrap);
    } else {
      result.textContent = "—";
    }
    tr.appendChild(result);
    const time = cell(item.duration_ms === null ? "" : item.duration_ms + " ms");
    time.className = "text-end small";
    tr.appendChild(time);
    return tr;
  }

  function render(doc) {
    for (const name of ["state_label", "finished", "ok", "failed"]) {
      const el = root.querySelector('[data-cc-batch-field="' + name + '"]');
      if (el) el.textContent = doc[name];
    }
    if (bar) bar.value = doc.finished;
    const badge = root.querySelector('[data-cc-batch-field="state_label"]');
    if (badge && doc.state !== "running") {
      badge.classList.remove("text-bg-primary");
      badge.classList.add(doc.state === "cancelled" ? "text-bg-warning" : "text-bg-secondary");
    }
    if (body) body.replaceChildren(...doc.items.map(row));
    root.dataset.ccBatchState = doc.state;
    if (doc.state !== "running") {
      const cancel = root.querySelector("[data-cc-batch-cancel]");
      if (cancel) cancel.remove();
    }
  }

  async function poll() {
    try {
      const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (response.ok) {
        const doc = await response.json();
        render(doc);
        // A finished batch may still have a row written just after its last poll: one more.
        if (doc.state !== "running" && doc.finished >= doc.total) return;
      }
    } catch (error) {
      // A dropped connection: try again at the next tick.
    }
    window.setTimeout(poll, INTERVAL_MS);
  }

  if (root.dataset.ccBatchState === "running") window.setTimeout(poll, INTERVAL_MS);
})();
