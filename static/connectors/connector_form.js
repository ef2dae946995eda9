// Connector form: shows and hides the groups of the chosen Auth Config, and manages key/value
// rows. The server decides what is required and stored; this script only changes visibility.
(function () {
  "use strict";
  const form = document.querySelector("[data-cc-conditional]");
  if (!form) return;
  document.documentElement.classList.add("js");

  // The server's own rule (connectors.oauth_http.redaction), rendered into the page by the form,
  // so ticking "Sensitive" as a name is typed never disagrees with how the server stores it.
  const ruleElement = document.getElementById("cc-sensitive-names");
  const rule = ruleElement ? JSON.parse(ruleElement.textContent) : null;
  let SENSITIVE_KEY = null;
  try {
    SENSITIVE_KEY = rule ? new RegExp(rule.pattern, rule.flags) : null;
  } catch (error) {
    // A pattern JavaScript cannot read leaves the box to the user; the server still decides.
    SENSITIVE_KEY = null;
  }
  const HARMLESS_KEYS = new Set(rule ? rule.harmless : []);
  const looksSensitive = (name) => {
    const normalised = name.trim().toLowerCase();
    return Boolean(SENSITIVE_KEY) && !HARMLESS_KEYS.has(normalised) && SENSITIVE_KEY.test(normalised);
  };

  function switchValue(name) {
    const field = form.querySelector(`[data-cc-switch="${name}"]`);
    if (!field) return "";
    if (field.type === "radio") {
      const checked = form.querySelector(`[name="${field.name}"]:checked`);
      return checked ? checked.value : "";
    }
    return field.value;
  }

  // "a=x|y b=z" holds when every clause holds; "... || ..." when any of the alternatives does
  // (the signing fields serve Jwt Auth, the JWT Bearer grant and private_key_jwt).
  function conditionHolds(element) {
    return element.dataset.ccShowWhen.split("||").some((alternative) =>
      alternative.trim().split(/\s+/).every((clause) => {
        const [name, allowed] = clause.split("=");
        return allowed.split("|").includes(switchValue(name));
      }));
  }

  function refreshVisibility() {
    form.querySelectorAll("[data-cc-show-when]").forEach((element) => {
      element.hidden = !conditionHolds(element);
    });
  }

  form.querySelectorAll("[data-cc-switch]").forEach((field) => {
    field.addEventListener("change", refreshVisibility);
  });
  refreshVisibility();

  function watchSensitive(row) {
    const key = row.querySelector("[data-cc-key]");
    const sensitive = row.querySelector("[data-cc-sensitive]");
    if (!key || !sensitive) return;
    const value = row.querySelector("input[name$='-value']");
    // A sensitive value is typed into a password box, so it is not left on screen.
    const mask = () => { if (value) value.type = sensitive.checked ? "password" : "text"; };
    sensitive.addEventListener("change", () => { sensitive.dataset.ccTouched = "1"; mask(); });
    key.addEventListener("input", () => {
      if (!sensitive.dataset.ccTouched && looksSensitive(key.value)) {
        sensitive.checked = true;
        mask();
      }
    });
    mask();
  }

  function enableRemove(row) {
    const remove = row.querySelector("[data-cc-remove-row]");
    const deleteBox = row.querySelector("[data-cc-delete]");
    const deleteLabel = row.querySelector("[data-cc-delete-label]");
    if (!remove || !deleteBox) return;
    deleteLabel.hidden = true;
    remove.hidden = false;
    remove.addEventListener("click", () => {
      deleteBox.checked = true;
      row.hidden = true;
      row.dataset.ccRemoved = "1";
      const set = row.closest("[data-cc-formset]");
      if (set) updateAddButton(set);
    });
  }

  function updateAddButton(set) {
    const add = set.querySelector("[data-cc-add-row]");
    const total = set.querySelector(`input[name="${set.dataset.ccFormset}-TOTAL_FORMS"]`);
    add.disabled = Number(total.value) >= Number(set.dataset.ccMax);
  }

  const isBlank = (row) =>
    !row.querySelector(".is-invalid") &&
    Array.from(row.querySelectorAll("input[type=text], input[type=password]")).every((i) => !i.value) &&
    !row.querySelector("[data-cc-sensitive]:checked, [data-cc-delete]:checked");

  // The server renders a few spare empty rows so that, without JavaScript, several rows can be
  // added in one save. With "Add row" at hand one spare is enough: drop the others. They are
  // the last rows, so the remaining indexes stay 0..n-1 and TOTAL_FORMS is simply lowered.
  function dropSpareRows(body, total) {
    const rows = Array.from(body.querySelectorAll("[data-cc-row]"));
    let keep = rows.length;
    while (keep > 1 && isBlank(rows[keep - 1]) && isBlank(rows[keep - 2])) keep -= 1;
    rows.slice(keep).forEach((row) => row.remove());
    total.value = String(Number(total.value) - (rows.length - keep));
  }

  form.querySelectorAll("[data-cc-formset]").forEach((set) => {
    const prefix = set.dataset.ccFormset;
    const total = set.querySelector(`input[name="${prefix}-TOTAL_FORMS"]`);
    const body = set.querySelector("[data-cc-rows]");
    const template = set.querySelector("template[data-cc-empty-row]");
    const add = set.querySelector("[data-cc-add-row]");
    dropSpareRows(body, total);
    body.querySelectorAll("[data-cc-row]").forEach((row) => { enableRemove(row); watchSensitive(row); });
    add.hidden = false;
    add.addEventListener("click", () => {
      const index = Number(total.value);
      if (index >= Number(set.dataset.ccMax)) return;
      // Django's placeholder for the index, and ours for the row number in the inputs' names.
      const html = template.innerHTML
        .replace(/__prefix__/g, String(index))
        .replace(/__number__/g, String(index + 1));
      body.insertAdjacentHTML("beforeend", html);
      const row = body.lastElementChild;
      total.value = String(index + 1);
      enableRemove(row);
      watchSensitive(row);
      row.querySelector("[data-cc-key]").focus();
      updateAddButton(set);
    });
    updateAddButton(set);
  });

  // After a failed submit the error summary (or the conflict panel) is first in the form and
  // takes the focus, so a screen reader reads it first; `autofocus` does the same without us.
  const summary = form.querySelector("[data-cc-focus]");
  if (summary && document.activeElement !== summary) summary.focus();

  // A summary link focuses its field (a plain #id jump only scrolls), opening what hides it.
  form.querySelectorAll("[data-cc-jump]").forEach((link) => {
    link.addEventListener("click", (event) => {
      const field = document.getElementById(link.dataset.ccJump);
      if (!field) return;
      event.preventDefault();
      for (let parent = field.parentElement; parent; parent = parent.parentElement) {
        if (parent.tagName === "DETAILS") parent.open = true;
      }
      const label = form.querySelector(`label[for="${field.id}"]`) || field;
      label.scrollIntoView({ block: "center", behavior: "instant" });
      field.focus({ preventScroll: true });
    });
  });
})();
