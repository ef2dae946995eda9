// Key help: "Generate key pair" asks before it replaces a stored key (the provider's registered
// public key would stop matching). The server does the work; this only asks first.
(function () {
  "use strict";
  document.addEventListener("click", (event) => {
    const button = event.target.closest("[data-cc-confirm]");
    if (button && !window.confirm(button.dataset.ccConfirm)) event.preventDefault();
  });
})();
