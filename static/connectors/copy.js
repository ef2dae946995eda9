// Copy buttons: <button data-cc-copy="ID"> copies the value (or text) of the element #ID.
(function () {
  "use strict";
  if (window.ccCopyReady) { return; }
  window.ccCopyReady = true;
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-cc-copy]");
    if (!button) { return; }
    var source = document.getElementById(button.getAttribute("data-cc-copy"));
    if (!source) { return; }
    var text = "value" in source ? source.value : source.textContent;
    var done = function () {
      var label = button.textContent;
      button.textContent = "Copied";
      window.setTimeout(function () { button.textContent = label; }, 1500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { source.select(); });
    } else if (source.select) {
      source.select();
      document.execCommand("copy");
      done();
    }
  });
})();
