// The AEX dashboard: charts (vendored vega-lite), bid-window countdowns, live refresh over SSE.
// No external URL: every request goes to this exchange's own origin.
"use strict";
(function () {
  function renderCharts(root) {
    root.querySelectorAll(".chart[data-spec]").forEach(function (el) {
      var spec = JSON.parse(el.getAttribute("data-spec"));
      vegaEmbed(el, spec, { mode: "vega-lite", actions: false, renderer: "svg" }).catch(
        function (error) { el.textContent = "chart: " + error; }
      );
    });
  }

  function tickCountdowns() {
    var now = Date.now();
    document.querySelectorAll("[data-closes-at]").forEach(function (el) {
      var left = Math.max(0, Math.round((Number(el.getAttribute("data-closes-at")) - now) / 1000));
      el.textContent = left > 0 ? left + " s" : "closing";
    });
  }

  function live(main) {
    var url = main.getAttribute("data-fragment");
    var pending = false;
    var again = false;
    function refresh() {
      if (pending) { again = true; return; }
      pending = true;
      fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (response) {
          if (response.status === 401 || response.redirected) { window.location = "/dashboard/sign-in"; return null; }
          return response.ok ? response.text() : null;
        })
        .then(function (html) {
          if (html !== null && html !== undefined) {
            main.innerHTML = html;
            renderCharts(main);
            tickCountdowns();
            main.setAttribute("data-refreshed", String(Date.now()));
          }
        })
        .finally(function () {
          pending = false;
          if (again) { again = false; refresh(); }
        });
    }
    var events = new EventSource("/dashboard/stream");
    events.addEventListener("ready", function () { document.body.setAttribute("data-live", "on"); });
    events.addEventListener("changed", refresh);
    events.addEventListener("expired", function () { events.close(); window.location = "/dashboard/sign-in"; });
  }

  document.addEventListener("DOMContentLoaded", function () {
    renderCharts(document);
    tickCountdowns();
    window.setInterval(tickCountdowns, 1000);
    var main = document.querySelector("main[data-fragment]");
    if (main) { live(main); }
  });
})();
