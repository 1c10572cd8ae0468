// County supply console: the little script every page shares. No inline scripts (CSP).
(function () {
  "use strict";
  var body = document.body;

  // htmx: the CSRF token on every request; a form's validation answer (422) is swapped in like a
  // success, a refusal or an unreachable service goes to the banner; the page is never replaced
  // by an error, so nothing typed is lost.
  if (window.htmx) {
    htmx.config.responseHandling = [
      {code: "204", swap: false},
      {code: "[23]..", swap: true},
      {code: "422", swap: true},
      {code: "[45]..", swap: false, error: true},
    ];
    body.addEventListener("htmx:configRequest", function (e) {
      if (body.dataset.csrf) e.detail.headers["X-CSRF-Token"] = body.dataset.csrf;
    });
    body.addEventListener("htmx:responseError", function (e) {
      showBanner(e.detail.xhr.responseText, true);
    });
    body.addEventListener("htmx:sendError", function () {
      showBanner("<p>" + (body.dataset.netError || "Network problem: nothing was lost, try again.") + "</p>", true);
    });
  }

  function showBanner(html, isError) {
    var b = document.getElementById("banner");
    if (!b) return;
    var doc = new DOMParser().parseFromString(html, "text/html");
    var section = doc.querySelector("section") || doc.body;
    b.replaceChildren.apply(b, Array.prototype.slice.call(section.childNodes));
    b.className = "banner" + (isError ? " bad" : "");
    b.hidden = false;
    b.scrollIntoView({block: "nearest"});
  }
  window.consoleBanner = showBanner;

  document.addEventListener("click", function (e) {
    var back = e.target.closest("[data-back]");
    if (back) { e.preventDefault(); history.back(); }
    var confirmEl = e.target.closest("[data-confirm]");
    if (confirmEl && !window.confirm(confirmEl.dataset.confirm)) e.preventDefault();
    var print = e.target.closest("[data-print]");
    if (print) { e.preventDefault(); window.print(); }
  });

  // A list filter (input[data-filter] = a selector of the entries, each with data-search): entries
  // hide as the person types, without a round trip; an entry with a value typed in it stays. Its
  // box, when marked data-filter-box, shows only with this script (it does nothing without).
  document.querySelectorAll("input[data-filter]").forEach(function (input) {
    var entries = document.querySelectorAll(input.dataset.filter);
    var box = input.closest("[data-filter-box]");
    if (box) box.hidden = false;
    function typedIn(entry) {
      return Array.prototype.some.call(entry.querySelectorAll("input:not([type=hidden])"), function (el) {
        return el.value.trim() !== "";
      });
    }
    input.addEventListener("input", function () {
      var q = input.value.trim().toLowerCase();
      entries.forEach(function (entry) {
        entry.hidden = q !== "" && (entry.dataset.search || "").indexOf(q) < 0 && !typedIn(entry);
      });
    });
  });

  // Forms marked data-keep keep what was typed in this browser until the server says it is saved.
  function keepKey(form) { return "keep:" + location.pathname + ":" + form.dataset.keep; }
  document.querySelectorAll("[data-saved]").forEach(function (el) {
    localStorage.removeItem("keep:" + el.dataset.savedPath + ":" + el.dataset.saved);
  });
  document.querySelectorAll("form[data-keep]").forEach(function (form) {
    var saved = localStorage.getItem(keepKey(form));
    if (saved && !form.querySelector("[aria-invalid=true]")) {
      try {
        var values = JSON.parse(saved);
        Object.keys(values).forEach(function (name) {
          var el = form.elements[name];
          if (el && !el.value && el.type !== "hidden" && el.type !== "file") el.value = values[name];
        });
      } catch (err) { localStorage.removeItem(keepKey(form)); }
    }
    form.addEventListener("input", function () {
      var values = {};
      Array.prototype.forEach.call(form.elements, function (el) {
        if (el.name && el.type !== "hidden" && el.type !== "password" && el.type !== "file") values[el.name] = el.value;
      });
      localStorage.setItem(keepKey(form), JSON.stringify(values));
    });
  });

  // A table wider than the screen scrolls inside its wrapper: keyboard users must reach it too.
  function focusableScrollers(root) {
    (root || document).querySelectorAll(".table-wrap").forEach(function (el) {
      if (el.scrollWidth > el.clientWidth && !el.hasAttribute("tabindex")) {
        el.tabIndex = 0;
        el.setAttribute("role", "region");
        var caption = el.querySelector("caption, th");
        el.setAttribute("aria-label", caption ? caption.textContent.trim() : "table");
      }
    });
  }
  focusableScrollers();
  document.addEventListener("htmx:afterSwap", function (e) { focusableScrollers(e.target); });
  window.addEventListener("resize", function () { focusableScrollers(); });

  function onlineState() {
    var el = document.getElementById("offline");
    if (el) el.hidden = navigator.onLine;
  }
  window.addEventListener("online", onlineState);
  window.addEventListener("offline", onlineState);
  onlineState();
})();
