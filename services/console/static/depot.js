// Depot keeper, inspection and unit pages: more line rows on a form, and the inspection form's
// fields that only one decision needs. No inline scripts (CSP); the forms work without this file.
(function () {
  "use strict";

  // "Add a line": a copy of the last row of the fieldset, empty, with its ids moved on by one.
  document.addEventListener("click", function (e) {
    var button = e.target.closest("[data-add-line]");
    if (!button) return;
    e.preventDefault();
    var box = document.getElementById(button.dataset.addLine);
    var rows = box ? box.querySelectorAll("[data-line]") : [];
    if (!rows.length) return;
    var last = rows[rows.length - 1];
    var next = Number(last.dataset.line) + 1;
    var copy = last.cloneNode(true);
    copy.dataset.line = String(next);
    copy.querySelectorAll(".field-error").forEach(function (el) { el.remove(); });
    copy.querySelectorAll("[id]").forEach(function (el) { el.id = el.id.replace(/^line-\d+-/, "line-" + next + "-"); });
    copy.querySelectorAll("label[for]").forEach(function (el) {
      el.htmlFor = el.htmlFor.replace(/^line-\d+-/, "line-" + next + "-");
    });
    copy.querySelectorAll("input, select, textarea").forEach(function (el) {
      el.removeAttribute("aria-invalid");
      el.removeAttribute("aria-describedby");
      if (el.tagName === "SELECT") el.selectedIndex = 0; else el.value = "";
    });
    last.after(copy);
    var first = copy.querySelector("input, select");
    if (first) first.focus();
  });

  // Inspection: show the medical-grade question only for "accept", the target only for "redirect".
  function decisionChanged(select) {
    var form = select.closest("form");
    if (!form) return;
    form.querySelectorAll("[data-when]").forEach(function (el) {
      el.hidden = el.dataset.when !== select.value && !el.querySelector("[aria-invalid=true]");
    });
  }
  document.querySelectorAll("select[data-decision]").forEach(function (select) {
    decisionChanged(select);
    select.addEventListener("change", function () { decisionChanged(select); });
  });
})();
