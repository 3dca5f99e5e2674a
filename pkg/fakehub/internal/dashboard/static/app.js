// fakehub dashboard: live updates over server-sent events, pause, payload view.
// No library, no build step. The server renders all HTML; this only places it.
(function () {
  "use strict";
  var paused = false, held = [];

  function split(data) {
    var i = data.indexOf("\n");
    return i < 0 ? [data, ""] : [data.slice(0, i), data.slice(i + 1)];
  }

  function prepend(id, html) {
    var el = document.getElementById(id);
    if (!el) return;
    var empty = el.querySelector("tr.empty");
    if (empty) empty.remove();
    el.insertAdjacentHTML("afterbegin", html);
    var max = parseInt(el.dataset.max || "200", 10);
    while (el.rows && el.rows.length > max) el.deleteRow(el.rows.length - 1);
  }

  function status(text, cls) {
    var s = document.getElementById("live-status");
    if (!s) return;
    s.textContent = text;
    s.className = "live " + (cls || "");
  }

  var url = document.body.dataset.events;
  if (url && window.EventSource) {
    var es = new EventSource(url);
    es.onopen = function () { status("live", "on"); };
    es.onerror = function () { status("reconnecting…", "off"); };
    es.addEventListener("replace", function (e) {
      var p = split(e.data), el = document.getElementById(p[0]);
      if (el) el.innerHTML = p[1];
    });
    es.addEventListener("prepend", function (e) {
      var p = split(e.data);
      if (paused) {
        held.push(p);
        var c = document.getElementById("paused-count");
        if (c) c.textContent = held.length + " updates held";
        return;
      }
      prepend(p[0], p[1]);
    });
  }

  var pause = document.getElementById("pause");
  if (pause) {
    pause.addEventListener("click", function () {
      paused = !paused;
      pause.setAttribute("aria-pressed", paused ? "true" : "false");
      pause.textContent = paused ? "Resume" : "Pause";
      if (!paused) {
        held.forEach(function (p) { prepend(p[0], p[1]); });
        held = [];
        var c = document.getElementById("paused-count");
        if (c) c.textContent = "";
      }
    });
  }

  var view = document.getElementById("payload-view");
  if (view) {
    view.addEventListener("change", function () {
      document.querySelectorAll("table.telemetry").forEach(function (t) { t.dataset.view = view.value; });
    });
  }
})();
