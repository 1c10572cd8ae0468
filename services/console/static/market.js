// Supermarket channel: the household order form shows its amount as quantities are typed (the
// same sum the server sends as expected_amount_fen; "Show the amount" does it without script).
(function () {
  "use strict";
  var form = document.getElementById("order-form");
  var shown = document.querySelector("[data-amount]");
  if (!form || !shown) return;
  function update() {
    var fen = 0;
    form.querySelectorAll("input[data-price]").forEach(function (el) {
      var q = el.value.trim();
      if (/^\d{1,2}$/.test(q)) fen += parseInt(q, 10) * parseInt(el.dataset.price, 10);
    });
    shown.textContent = Math.floor(fen / 100) + "." + String(fen % 100).padStart(2, "0");
  }
  form.addEventListener("input", update);
})();
