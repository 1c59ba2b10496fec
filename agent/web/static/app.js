// edc-agent technician page: live updates. The pages work without this file; with it,
// every element marked data-live is re-read from the server when the journal changes
// (Server-Sent Events on /api/events) and every few seconds for counters and ages.
// The new markup comes from the same server-side renderer (already escaped).
"use strict";
(function () {
  var POLL_MS = 5000;       // counters, ages, transport states
  var DEBOUNCE_MS = 150;    // several journal commits in a row → one refresh
  var status = document.getElementById("live-status");
  var timer = null;
  var busy = false;
  var again = false;

  function liveElements() {
    return Array.prototype.filter.call(
      document.querySelectorAll("[data-live][id]"), function (el) { return el.id; });
  }

  function setStatus(text, on) {
    if (!status) { return; }
    status.textContent = text;
    status.className = on ? "on" : "off";
  }

  function refresh() {
    if (busy) { again = true; return; }
    if (document.hidden) { return; }
    busy = true;
    fetch(window.location.href, {
      credentials: "same-origin", cache: "no-store", headers: { "Accept": "text/html" }
    }).then(function (response) {
      if (!response.ok) { throw new Error("HTTP " + response.status); }
      return response.text();
    }).then(function (text) {
      var doc = new DOMParser().parseFromString(text, "text/html");
      liveElements().forEach(function (el) {
        var fresh = doc.getElementById(el.id);
        if (fresh && fresh.outerHTML !== el.outerHTML) {
          el.replaceWith(document.importNode(fresh, true));
        }
      });
      document.body.setAttribute("data-refreshed", String(Date.now()));
    }).catch(function () {
      setStatus("cannot reach the agent; retrying", false);
    }).finally(function () {
      busy = false;
      if (again) { again = false; soon(); }
    });
  }

  function soon() {
    if (timer !== null) { clearTimeout(timer); }
    timer = setTimeout(function () { timer = null; refresh(); }, DEBOUNCE_MS);
  }

  if (!liveElements().length) {
    setStatus("", false);
    return;
  }
  setStatus("live updates: polling", true);
  if ("EventSource" in window) {
    var events = new EventSource("/api/events");
    events.addEventListener("open", function () { setStatus("live", true); });
    ["txn", "call", "resync"].forEach(function (name) {
      events.addEventListener(name, soon);
    });
    events.addEventListener("error", function () {
      setStatus("live updates: reconnecting (polling meanwhile)", false);
    });
    window.addEventListener("pagehide", function () { events.close(); });
  }
  setInterval(refresh, POLL_MS);
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) { soon(); }
  });
})();
