// The intake's customer picker: suggestions from the server as the agent types. Without this
// script the field still works: the server resolves a typed name, e-mail or number (#12).
(function () {
  "use strict";
  var list = document.getElementById("customer-options");
  var input = document.querySelector('input[list="customer-options"]');
  if (!list || !input || !window.fetch) { return; }
  var source = list.getAttribute("data-source");
  var timer = null;
  var asked = "";

  function fill(results) {
    while (list.firstChild) { list.removeChild(list.firstChild); }
    results.forEach(function (customer) {
      var option = document.createElement("option");
      option.value = customer.label;
      option.textContent = customer.email || customer.name;
      list.appendChild(option);
    });
  }

  function ask() {
    var text = input.value.trim();
    if (text.length < 2 || text === asked || /\(#\d+\)$/.test(text)) { return; }
    asked = text;
    fetch(source + "?q=" + encodeURIComponent(text), {credentials: "same-origin",
                                                       headers: {"Accept": "application/json"}})
      .then(function (response) { return response.ok ? response.json() : {results: []}; })
      .then(function (data) { if (input.value.trim() === text) { fill(data.results || []); } })
      .catch(function () { /* suggestions are a convenience: typing still works */ });
  }

  input.addEventListener("input", function () {
    window.clearTimeout(timer);
    timer = window.setTimeout(ask, 200);
  });
}());
