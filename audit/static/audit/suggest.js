// Type-ahead for the audit log's connector and user filters. As the user types, asks the
// suggest endpoint (data-audit-suggest) for a few matching names and puts them in the input's
// <datalist>, so the page never carries a list of every connector. Without this script the
// inputs still filter by an exact name, or by an id as older links carry it.
(function () {
  "use strict";
  var WAIT_MS = 150; // after the last keystroke: one request per pause, not per key

  function bind(input) {
    var list = document.getElementById(input.getAttribute("list"));
    if (!list || input.dataset.auditSuggestBound) { return; }
    input.dataset.auditSuggestBound = "1";
    var timer = null;
    var asked = null;
    var pending = null;

    function fill(names) {
      var options = names.map(function (name) {
        var option = document.createElement("option");
        option.value = name;
        return option;
      });
      list.replaceChildren.apply(list, options);
    }

    function ask() {
      var text = input.value.trim();
      if (text === asked) { return; }
      asked = text;
      if (pending) { pending.abort(); } // an older answer must not overwrite a newer one
      pending = new AbortController();
      var url = input.getAttribute("data-audit-suggest") + "?q=" + encodeURIComponent(text);
      fetch(url, {
        headers: { Accept: "application/json" },
        credentials: "same-origin",
        signal: pending.signal
      })
        .then(function (response) { return response.ok ? response.json() : { matches: [] }; })
        .then(function (data) { fill(Array.isArray(data.matches) ? data.matches : []); })
        .catch(function () { asked = null; }); // aborted or offline: ask again next time
    }

    input.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(ask, WAIT_MS);
    });
    input.addEventListener("focus", ask);
  }

  Array.prototype.forEach.call(document.querySelectorAll("input[data-audit-suggest]"), bind);
})();
