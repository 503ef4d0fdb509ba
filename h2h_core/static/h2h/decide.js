// Live dry-run verdict for the decision form: headroom and the button's meaning change as you type.
(function () {
  "use strict";
  var form = document.getElementById("decision-form");
  if (!form) { return; }
  var out = document.getElementById("dry-run");
  var button = document.getElementById("decide-button");
  var timer = null;
  var latest = 0;
  // The button always leads to the review step; over the limit it says who will be asked.
  var REVIEW = "Review decision";

  function field(name) { return form.querySelector("[name='" + name + "']"); }

  function show(text, state) {
    out.textContent = text;
    out.className = "dry-run " + (state || "");
  }

  function check() {
    var amount = field("amount").value.trim();
    if (!amount) { show("Type an amount to see whether it is within your authority."); button.textContent = REVIEW; return; }
    var params = new URLSearchParams({ kind: field("kind").value, amount: amount, currency: field("currency").value });
    var ticket = ++latest;
    fetch(form.dataset.checkUrl + "?" + params.toString(), { headers: { "Accept": "application/json" }, credentials: "same-origin" })
      .then(function (response) { return response.json(); })
      .then(function (body) {
        if (ticket !== latest) { return; }
        if (body.error) { show(body.error.message, "refused"); return; }
        var v = body.verdict;
        if (v.allowed) {
          show("Within your authority. " + v.reasons.join(" "), "allowed");
          button.textContent = REVIEW;
        } else if (v.approvers && v.approvers.length) {
          // The pool the request service will route to: the verdict names it, nobody else computes it.
          show("Over your authority. " + v.reasons.join(" "), "refused");
          button.textContent = "Request approval from " + v.approvers.join(", ");
        } else {
          // Suspended, or nobody can approve this amount: say so (and what to do) instead of offering a request.
          show("Over your authority. " + v.reasons.join(" ") + (v.no_approver ? " " + v.no_approver : ""), "refused");
          button.textContent = REVIEW;
        }
      })
      .catch(function () { show("Could not check right now; the decision is still checked when you submit."); });
  }

  form.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(check, 250); });
  form.addEventListener("change", function () { clearTimeout(timer); timer = setTimeout(check, 50); });
})();
