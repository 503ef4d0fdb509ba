// Who else has this case open, and whether the page still shows the case: a heartbeat every 3 s.
// Without it nothing breaks: a submit made on a stale page is refused by the server all the same.
(function () {
  "use strict";
  var box = document.getElementById("presence");
  if (!box || !window.fetch) { return; }
  var others = document.getElementById("presence-others");
  var changed = document.getElementById("presence-changed");
  var token = box.querySelector("[name='csrfmiddlewaretoken']");
  var BEAT_MS = 3000;
  // Editing: a field of one of the case's forms was focused or typed in during the last 30 s.
  var IDLE_MS = 30000;
  var editing = "";
  var editedAt = 0;
  var said = others.textContent;
  var failures = 0;
  var timer = null;
  var inFlight = false;
  var again = false;  // asked for a beat while one was on its way: send the next one at once

  function onEdit(event) {
    var form = event.target.form || (event.target.closest && event.target.closest("form"));
    if (form && form.dataset.presence) {
      var started = editing !== form.dataset.presence;
      editing = form.dataset.presence;
      editedAt = Date.now();
      // Said at once, not at the next beat: the others see it within one of their own beats.
      if (started) { beat(); }
    }
  }
  document.addEventListener("input", onEdit);
  document.addEventListener("focusin", onEdit);

  function showOthers(list) {
    var text = list.map(function (person) { return person.text; }).join("; ");
    // An aria-live region is announced when its text changes: only set it when it does.
    if (text !== said) { others.textContent = text; said = text; }
  }

  function showChanged(text) {
    if (!text || changed.dataset.text === text) { return; }
    changed.dataset.text = text;
    changed.textContent = text + " ";
    var reload = document.createElement("a");
    reload.href = window.location.pathname;
    reload.textContent = "Reload the case";
    changed.appendChild(reload);
  }

  function beat() {
    window.clearTimeout(timer);
    if (inFlight) { again = true; return; }
    if (document.hidden) { return schedule(); }
    if (editing && Date.now() - editedAt > IDLE_MS) { editing = ""; }
    var body = new URLSearchParams({ editing: editing, seen_version: box.dataset.viewVersion });
    inFlight = true;
    fetch(box.dataset.presenceUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Accept": "application/json", "X-CSRFToken": token ? token.value : "" },
      body: body
    })
      .then(function (response) {
        if (!response.ok) { throw new Error(String(response.status)); }
        return response.json();
      })
      .then(function (data) {
        inFlight = false;
        failures = 0;
        showOthers(data.others || []);
        showChanged(data.changed);
        if (again) { again = false; beat(); } else { schedule(); }
      })
      .catch(function () {
        // Logged out, case gone or server away: back off, and stop after a while.
        inFlight = false;
        failures += 1;
        if (failures < 5) { schedule(BEAT_MS * (failures + 1)); }
      });
  }

  function schedule(delay) { timer = window.setTimeout(beat, delay || BEAT_MS); }

  beat();
}());
