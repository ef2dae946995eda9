// Copy buttons of the audit step view (safe to load more than once).
(function () {
  "use strict";
  if (window.auditCopyBound) { return; }
  window.auditCopyBound = true;
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-audit-copy]");
    if (!button) { return; }
    var source = document.querySelector(button.getAttribute("data-audit-copy"));
    if (!source) { return; }
    var text = source.textContent;
    var done = function () {
      var label = button.textContent;
      button.textContent = "Copied";
      setTimeout(function () { button.textContent = label; }, 1500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done);
    } else {
      var area = document.createElement("textarea");
      area.value = text;
      document.body.appendChild(area);
      area.select();
      document.execCommand("copy");
      area.remove();
      done();
    }
  });
})();
