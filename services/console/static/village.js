// Village and grid worker pages: the demand form's lines, the offline queue
// of demands (kept in localStorage, sent to /village/demand.json with their idempotency key when
// the network returns), the service worker, and small helpers of the other village forms.
// No inline scripts (CSP); texts come from data-t-* attributes rendered in the page's language.
(function () {
  "use strict";
  var body = document.body;
  var root = document.getElementById("village");
  var requester = root ? root.dataset.requester : "";
  var QUEUE = "village-queue:v1";
  var SENT = "village-sent:v1";
  var USED = "village-used-keys:v1";
  var CACHE = "village-v2";
  var FORM_KEEP = "keep:/village/demand/new:demand";

  function load(name, fallback) {
    try { var v = JSON.parse(localStorage.getItem(name)); return v === null ? fallback : v; }
    catch (e) { return fallback; }
  }
  function save(name, value) { localStorage.setItem(name, JSON.stringify(value)); }
  function newKey() {
    var a = new Uint8Array(16);
    crypto.getRandomValues(a);
    return Array.prototype.map.call(a, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }
  function fill(template, values) {
    return (template || "").replace(/\{(\w+)\}/g, function (m, k) { return values[k] !== undefined ? values[k] : m; });
  }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // ---- the service worker: the form, the catalogue in it and the assets work offline ----------
  if ("serviceWorker" in navigator && root) {
    navigator.serviceWorker.register("/sw.js", {scope: "/village"}).catch(function () {});
  }
  // Signing out drops the cached pages (they carry the person's name and form token).
  var logout = document.querySelector('form[action="/logout"]');
  if (logout && window.caches) {
    logout.addEventListener("submit", function (e) {
      if (logout.dataset.cleared) return;
      e.preventDefault();
      caches.delete(CACHE).finally(function () { logout.dataset.cleared = "1"; logout.submit(); });
    });
  }

  // ---- lines: add, remove, pick from the catalogue ------------------------------------------
  function linesOf(form) { return form ? form.querySelector(".lines") : null; }
  function nextIndex(lines) {
    var max = -1;
    lines.querySelectorAll("[data-line]").forEach(function (f) { max = Math.max(max, parseInt(f.dataset.line, 10)); });
    return max + 1;
  }
  function addLine(form, code) {
    var lines = linesOf(form), tpl = form.parentNode.querySelector("#line-template") || document.getElementById("line-template");
    if (!lines || !tpl) return null;
    var i = nextIndex(lines);
    var html = tpl.innerHTML.replace(/__i__/g, String(i));
    var holder = document.createElement("div");
    holder.innerHTML = html;
    var line = holder.querySelector("[data-line]");
    lines.appendChild(line);
    if (code) line.querySelector("input[name$='-item']").value = code;
    return line;
  }
  function emptyLine(form) {
    var found = null;
    (linesOf(form) || document).querySelectorAll("[data-line]").forEach(function (f) {
      if (found) return;
      var item = f.querySelector("input[name$='-item']"), qty = f.querySelector("input[name$='-quantity']");
      if (item && !item.value && qty && !qty.value) found = f;
    });
    return found;
  }
  document.addEventListener("click", function (e) {
    var add = e.target.closest("[data-add-line]");
    if (add && add.form) {
      e.preventDefault();
      var line = addLine(add.form);
      if (line) line.querySelector("input").focus();
      return;
    }
    var remove = e.target.closest("[data-remove-line]");
    if (remove && remove.form) {
      e.preventDefault();
      var f = remove.closest("[data-line]"), form = remove.form;
      if (linesOf(form).querySelectorAll("[data-line]").length > 1) f.remove();
      else f.querySelectorAll("input").forEach(function (i) { i.value = ""; });
      form.dispatchEvent(new Event("input", {bubbles: true}));
      return;
    }
    var pick = e.target.closest("[data-add-item]");
    if (pick) {
      e.preventDefault();
      var target = document.getElementById("demand-form");
      var ln = emptyLine(target) || addLine(target);
      if (!ln) return;
      ln.querySelector("input[name$='-item']").value = pick.dataset.addItem;
      ln.querySelector("input[name$='-quantity']").focus();
      target.dispatchEvent(new Event("input", {bubbles: true}));
    }
  });

  // Kept values (app.js) of lines added in the browser: add the lines, then fill them.
  var demandForm = document.getElementById("demand-form");
  if (demandForm && !demandForm.querySelector("[aria-invalid=true]")) {
    var kept = load(FORM_KEEP, null);
    if (kept) {
      Object.keys(kept).forEach(function (name) {
        var m = /^lines-(\d+)-/.exec(name);
        if (!m || demandForm.elements[name]) return;
        while (!demandForm.elements[name]) { if (!addLine(demandForm)) return; }
      });
      Object.keys(kept).forEach(function (name) {
        var input = demandForm.elements[name];
        if (input && !input.value && input.type !== "hidden") input.value = kept[name];
      });
    }
  }

  // ---- the offline queue ---------------------------------------------------------------------
  var panel = document.getElementById("queue");
  var flushing = false;

  function keyField(form) { return form.querySelector("input[name=idempotency_key]"); }
  function markUsed(key) {
    var used = load(USED, []);
    if (used.indexOf(key) < 0) used.push(key);
    save(USED, used.slice(-100));
  }
  // A page from the worker's cache may carry a key already used: never send two demands with one.
  if (demandForm) {
    var kf = keyField(demandForm);
    if (kf && load(USED, []).indexOf(kf.value) >= 0) kf.value = newKey();
  }

  function summary(entry) {
    return entry.lines.map(function (l) { return l.item + " × " + l.quantity; }).join(", ");
  }

  function render() {
    if (!panel) return;
    var queue = load(QUEUE, []).filter(function (q) { return q.requester === requester; });
    var sent = load(SENT, []).filter(function (s) { return s.requester === requester; });
    var list = document.getElementById("queue-list"), done = document.getElementById("sent-list");
    list.replaceChildren();
    done.replaceChildren();
    var waiting = queue.filter(function (q) { return q.state !== "refused"; }).length;
    var refused = queue.length - waiting;
    document.getElementById("queue-title").textContent =
      waiting || (!refused && !sent.length) ? fill(panel.dataset.tWaiting, {n: waiting})
        : refused ? fill(panel.dataset.tRefusedTitle, {n: refused}) : panel.dataset.tSentTitle;
    queue.forEach(function (q) {
      var li = el("li", "queued " + (q.state === "refused" ? "refused" : "waiting"));
      li.dataset.key = q.key;
      li.appendChild(el("span", "what", summary(q)));
      li.appendChild(el("span", "muted small", " · " + fill(panel.dataset.tQueued, {at: q.queued_at})));
      if (q.state === "refused") {
        li.appendChild(el("p", "field-error", panel.dataset.tRefused + ": " + (q.error || "")));
        var again = el("button", "", panel.dataset.tRetry);
        again.type = "button";
        again.addEventListener("click", function () { setState(q.key, "waiting", ""); flush(); });
        var edit = el("button", "", panel.dataset.tEdit);
        edit.type = "button";
        edit.hidden = !demandForm;
        edit.addEventListener("click", function () { putBack(q); });
        var rm = el("button", "danger", panel.dataset.tRemove);
        rm.type = "button";
        rm.addEventListener("click", function () {
          if (window.confirm(panel.dataset.tConfirmRemove)) { drop(q.key); render(); }
        });
        var actions = el("div", "actions");
        actions.append(again, edit, rm);
        li.appendChild(actions);
      } else if (q.note) {
        li.appendChild(el("p", "muted small", q.note));
      }
      list.appendChild(li);
    });
    sent.forEach(function (s) {
      var li = el("li", "sent ok");
      var a = el("a", "", fill(panel.dataset.tSent, {id: s.id, day: s.day}));
      a.href = "/village/demands/" + encodeURIComponent(s.id);
      li.appendChild(a);
      done.appendChild(li);
    });
    panel.hidden = queue.length === 0 && sent.length === 0;
  }

  function setState(key, state, error, note) {
    var queue = load(QUEUE, []);
    queue.forEach(function (q) { if (q.key === key) { q.state = state; q.error = error || ""; q.note = note || ""; } });
    save(QUEUE, queue);
  }
  function drop(key) { save(QUEUE, load(QUEUE, []).filter(function (q) { return q.key !== key; })); }

  function putBack(entry) {
    if (!demandForm) return;
    var lines = linesOf(demandForm);
    lines.querySelectorAll("[data-line]").forEach(function (f, i) { if (i > 0) f.remove(); });
    lines.querySelectorAll("input").forEach(function (i) { i.value = ""; });
    entry.lines.forEach(function (l, i) {
      var ln = i === 0 ? lines.querySelector("[data-line]") : addLine(demandForm);
      ln.querySelector("input[name$='-item']").value = l.item;
      ln.querySelector("input[name$='-quantity']").value = l.quantity;
      ln.querySelector("input[name$='-note']").value = l.note || "";
    });
    if (demandForm.elements.delivery_day) demandForm.elements.delivery_day.value = entry.delivery_day || "";
    drop(entry.key);
    render();
    demandForm.scrollIntoView({block: "start"});
  }

  // Offline nobody checks the lines: the console's own checks (an item, a whole number) here,
  // next to the field, as the server would; the rules (ranges, non-essentials) wait for intake.
  function fieldError(input, text) {
    var id = "err-" + input.id, p = document.getElementById(id);
    if (!text) {
      input.removeAttribute("aria-invalid");
      if (p && p.dataset.client) p.remove();
      return;
    }
    if (!p) {
      p = el("p", "field-error");
      p.id = id;
      p.dataset.client = "1";
      input.insertAdjacentElement("afterend", p);
    }
    p.textContent = text;
    input.setAttribute("aria-invalid", "true");
    input.setAttribute("aria-describedby", id);
  }

  function queueForm(form) {
    var lines = [], bad = null;
    form.querySelectorAll("[data-line]").forEach(function (f) {
      var item = f.querySelector("input[name$='-item']"), qty = f.querySelector("input[name$='-quantity']");
      var note = f.querySelector("input[name$='-note']");
      var blank = !item.value.trim() && !qty.value.trim() && !note.value.trim();
      fieldError(item, !blank && !item.value.trim() ? form.dataset.tItem : "");
      fieldError(qty, !blank && !/^[+-]?\d{1,15}$/.test(qty.value.trim()) ? form.dataset.tNumber : "");
      if (!blank && (!item.value.trim() || !/^[+-]?\d{1,15}$/.test(qty.value.trim()))) bad = bad || item;
      if (!blank) lines.push({item: item.value.trim(), quantity: qty.value.trim(), note: note.value.trim()});
    });
    if (bad) { bad.focus(); return false; }
    if (!lines.length) return false;
    var key = keyField(form).value;
    var now = new Date();
    var queue = load(QUEUE, []);
    queue.push({key: key, requester: requester, lines: lines,
                delivery_day: form.elements.delivery_day ? form.elements.delivery_day.value : "",
                queued_at: ("0" + now.getHours()).slice(-2) + ":" + ("0" + now.getMinutes()).slice(-2),
                state: "waiting"});
    save(QUEUE, queue);
    markUsed(key);
    keyField(form).value = newKey();
    linesOf(form).querySelectorAll("[data-line]").forEach(function (f, i) { if (i > 0) f.remove(); });
    form.querySelectorAll("input:not([type=hidden])").forEach(function (i) { i.value = ""; });
    localStorage.removeItem(FORM_KEEP);
    return true;
  }

  function payload(entry) {
    var p = new URLSearchParams();
    p.set("idempotency_key", entry.key);
    p.set("requester_id", entry.requester);
    p.set("delivery_day", entry.delivery_day || "");
    entry.lines.forEach(function (l, i) {
      p.set("lines-" + i + "-item", l.item);
      p.set("lines-" + i + "-quantity", l.quantity);
      p.set("lines-" + i + "-note", l.note || "");
    });
    return p;
  }

  // Send what waits, one at a time, with each entry's own key (a repeat is the same demand).
  function flush() {
    if (flushing || !navigator.onLine || !requester) return Promise.resolve();
    var waiting = load(QUEUE, []).filter(function (q) { return q.requester === requester && q.state !== "refused"; });
    if (!waiting.length) return Promise.resolve();
    flushing = true;
    var chain = Promise.resolve(true);
    waiting.forEach(function (entry) {
      chain = chain.then(function (go) {
        if (!go) return false;
        return fetch("/village/demand.json", {
          method: "POST", credentials: "same-origin", body: payload(entry),
          headers: {"X-CSRF-Token": body.dataset.csrf || "", "Accept": "application/json"},
        }).then(function (resp) {
          return resp.json().catch(function () { return {}; }).then(function (data) {
            if (resp.ok && data.demand) {
              drop(entry.key);
              var sent = load(SENT, []).filter(function (s) { return s.key !== entry.key; });
              sent.push({requester: requester, key: entry.key, id: data.demand.id, day: data.demand.delivery_day});
              save(SENT, sent.slice(-10));
              return true;
            }
            var json = (resp.headers.get("content-type") || "").indexOf("json") >= 0;
            if (resp.status === 401 || (resp.status === 403 && !json)) {
              // the session or its form token is gone (a page from the cache): sign in, it is sent then
              setState(entry.key, "waiting", "", panel ? panel.dataset.tSignin : "");
              return false;
            }
            if (resp.status >= 400 && resp.status < 500 && resp.status !== 408 && resp.status !== 429) {
              setState(entry.key, "refused", data.error || (resp.status + " " + resp.statusText));
              return true;
            }
            return false;  // 5xx: the service is down; keep it and try later
          });
        }, function () { return false; });
      });
    });
    return chain.then(function () { flushing = false; render(); }, function () { flushing = false; render(); });
  }
  window.villageQueue = {flush: flush, render: render};

  if (demandForm) {
    demandForm.addEventListener("submit", function (e) {
      var key = keyField(demandForm).value;
      if (!navigator.onLine) {
        e.preventDefault();
        if (queueForm(demandForm)) { render(); if (panel) panel.scrollIntoView({block: "nearest"}); }
        return;
      }
      markUsed(key);
      var button = demandForm.querySelector("[data-submit]");
      if (e.submitter === button) setTimeout(function () { button.disabled = true; }, 0);
    });
  }
  window.addEventListener("online", flush);
  render();
  flush();
  setInterval(function () { if (navigator.onLine) flush(); }, 30000);

  // ---- special needs: name and phone stay in this tab, never come back from the server --------
  var needForm = document.querySelector("form[data-personal-form]");
  var STASH = "village-personal";
  if (needForm) {
    if (needForm.hasAttribute("data-restore-personal")) {
      var stash = {};
      try { stash = JSON.parse(sessionStorage.getItem(STASH)) || {}; } catch (err) { stash = {}; }
      Object.keys(stash).forEach(function (name) {
        var input = needForm.elements[name];
        if (input && !input.value) input.value = stash[name];
      });
      var note = needForm.querySelector("[data-personal-note]");
      if (note && Object.keys(stash).length) note.hidden = true;
    }
    sessionStorage.removeItem(STASH);
    needForm.addEventListener("submit", function () {
      var keep = {};
      needForm.querySelectorAll("[data-personal]").forEach(function (i) { keep[i.name] = i.value; });
      sessionStorage.setItem(STASH, JSON.stringify(keep));
    });
  }

  // ---- the spreadsheet: refuse a file larger than the limit before sending it -----------------
  var importForm = document.getElementById("import-form");
  if (importForm) {
    importForm.addEventListener("submit", function (e) {
      var file = importForm.elements.file.files[0], max = parseInt(importForm.dataset.maxBytes, 10);
      var err = document.getElementById("err-file");
      if (file && file.size > max) {
        e.preventDefault();
        err.textContent = importForm.dataset.tTooLarge;
        err.hidden = false;
        importForm.elements.file.setAttribute("aria-invalid", "true");
        importForm.elements.file.setAttribute("aria-describedby", "err-file");
      }
    });
  }

  // ---- receipt: the reason fields matter only for a line received short -----------------------
  document.querySelectorAll(".receive-form input[data-shipped]").forEach(function (input) {
    var extra = input.closest("fieldset").querySelector(".short-only");
    function toggle() {
      var n = parseInt(input.value, 10);
      extra.hidden = !(n < parseInt(input.dataset.shipped, 10)) && !extra.querySelector("[aria-invalid=true]");
    }
    input.addEventListener("input", toggle);
    toggle();
  });
})();
