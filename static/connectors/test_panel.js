// "Test connection": posts the form (or the saved connector) in the background and shows the
// result panel. Without JavaScript the same buttons submit normally and get a full page.
(function () {
  "use strict";
  const target = document.getElementById("test-result");
  if (!target) return;

  document.addEventListener("click", async (event) => {
    const button = event.target.closest("[data-cc-test]");
    if (!button || !button.form) return;
    event.preventDefault();
    const form = button.form;
    const action = button.getAttribute("formaction") || form.action;
    button.disabled = true;
    const label = button.textContent;
    button.innerHTML = '<span class="spinner-border spinner-border-sm me-1" aria-hidden="true"></span>Testing…';
    target.innerHTML = '<div class="alert alert-secondary" role="status">' +
      '<span class="spinner-border spinner-border-sm me-2" aria-hidden="true"></span>' +
      "Running the token request… this can take up to " + (target.dataset.ccTimeout || "10") + " seconds.</div>";
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
        '<div class="alert alert-danger" data-cc-test-result>The test could not run (HTTP ' +
        response.status + "). Try again, or tell an administrator if it keeps failing.</div>";
    } catch (error) {
      target.innerHTML = '<div class="alert alert-danger">The test could not be started: ' +
        "the server did not answer. Check your network and try again.</div>";
    } finally {
      button.disabled = false;
      button.textContent = label;
    }
    // A test of unsaved values can set the method it found in the form (saved with the form).
    const select = document.getElementById("id_oauth2_client_authentication");
    target.querySelectorAll("[data-cc-use-method]").forEach((use) => {
      if (!select) return;
      use.hidden = false;
      use.addEventListener("click", () => {
        select.value = use.dataset.ccUseMethod;
        select.dispatchEvent(new Event("change", { bubbles: true }));
        use.textContent = "Set in the form: save to keep it";
        use.disabled = true;
      });
    });
  });
})();
