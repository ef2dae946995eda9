// "Test connection": posts the form (or the saved connector) in the background and shows the
// result panel. Without JavaScript the same buttons submit normally and get a full page.
(function () {
  "use strict";
  const target = document.getElementById("test-result");
  if (!target) return;

  // Screen readers hear one sentence per result (the panel's data-cc-summary), not the whole
  // panel: the panel itself is not a live region, a hidden status line beside it is.
  target.removeAttribute("aria-live");
  const status = document.createElement("p");
  status.className = "visually-hidden";
  status.setAttribute("role", "status");
  status.setAttribute("aria-live", "polite");
  status.dataset.ccTestAnnouncement = "";
  target.before(status);
  const announce = (text) => {
    // Cleared first, so the same sentence twice in a row is still read out.
    status.textContent = "";
    window.setTimeout(() => { status.textContent = text; }, 50);
  };

  // A fix found by a test of unsaved values sets its field in the form (saved with the form).
  const offerFormFixes = () => {
    target.querySelectorAll("[data-cc-use-field]").forEach((use) => {
      const field = document.getElementById(use.dataset.ccUseField);
      if (!field) return;
      use.hidden = false;
      use.addEventListener("click", () => {
        field.value = use.dataset.ccUseValue;
        field.dispatchEvent(new Event("change", { bubbles: true }));
        field.dispatchEvent(new Event("input", { bubbles: true }));
        use.textContent = "Set in the form: save to keep it";
        use.disabled = true;
      });
    });
  };

  document.addEventListener("click", async (event) => {
    const button = event.target.closest("[data-cc-test]");
    if (!button || !button.form) return;
    event.preventDefault();
    const form = button.form;
    const action = button.getAttribute("formaction") || form.action;
    button.disabled = true;
    const label = button.textContent;
    button.innerHTML = '<span class="spinner-border spinner-border-sm me-1" aria-hidden="true"></span>Testing…';
    target.innerHTML = '<div class="alert alert-secondary">' +
      '<span class="spinner-border spinner-border-sm me-2" aria-hidden="true"></span>' +
      "Running the connection test… this can take up to " + (target.dataset.ccTimeout || "10") +
      " seconds.</div>";
    announce("Running the connection test.");
    target.scrollIntoView({ behavior: "smooth", block: "nearest" });
    try {
      const response = await fetch(action, {
        method: "POST",
        body: new FormData(form),
        headers: { "X-Requested-With": "fetch" },
        credentials: "same-origin",
      });
      const html = await response.text();
      // Our own answers carry the result marker; anything else (a proxy error page) is not shown.
      target.innerHTML = html.includes("data-cc-test-result") ? html :
        '<div class="alert alert-danger" data-cc-test-result data-cc-summary="The test could not run.">' +
        "The test could not run (HTTP " + response.status +
        "). Try again, or tell an administrator if it keeps failing.</div>";
    } catch (error) {
      target.innerHTML = '<div class="alert alert-danger" data-cc-test-result ' +
        'data-cc-summary="The test could not be started.">The test could not be started: ' +
        "the server did not answer. Check your network and try again.</div>";
    } finally {
      button.disabled = false;
      button.textContent = label;
    }
    const result = target.querySelector("[data-cc-test-result]");
    announce((result && result.dataset.ccSummary) || "The connection test finished.");
    offerFormFixes();
  });
})();
