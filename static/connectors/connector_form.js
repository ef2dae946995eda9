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

  form.querySelectorAll("[data-cc-formset]").forEach((set) => {
    const prefix = set.dataset.ccFormset;
    const total = set.querySelector(`input[name="${prefix}-TOTAL_FORMS"]`);
    const body = set.querySelector("[data-cc-rows]");
    const template = set.querySelector("template[data-cc-empty-row]");
    const add = set.querySelector("[data-cc-add-row]");
    body.querySelectorAll("[data-cc-row]").forEach((row) => { enableRemove(row); watchSensitive(row); });
    add.hidden = false;
    add.addEventListener("click", () => {
      const index = Number(total.value);
      if (index >= Number(set.dataset.ccMax)) return;
      const html = template.innerHTML.replace(/__prefix__/g, String(index));
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
})();
