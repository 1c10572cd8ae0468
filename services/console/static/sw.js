// Service worker of the village pages (served at /sw.js, registered with scope /village by
// village.js): the demand form, the catalogue rendered in it and the static assets are cached,
// so the form opens and can be filled without a network; the submissions made offline wait in
// the page's queue (village.js), not here. Pages: network first (always fresh when online),
// the cached copy when offline. Static assets: the cached copy, refreshed in the background.
"use strict";
var CACHE = "village-v2";  // v2: the list filter moved to app.js
var PAGES = ["/village/demand/new", "/village"];
var ASSETS = ["/static/app.css", "/static/app.js", "/static/village.js", "/static/vendor/htmx.min.js",
              "/static/manifest.webmanifest", "/static/icon.svg"];

function keep(cache, url, response) {
  // only a page that really is the signed-in person's (not the sign-in page it redirects to)
  if (response && response.ok && !response.redirected && response.type === "basic") {
    return cache.put(url, response.clone()).then(function () { return response; });
  }
  return Promise.resolve(response);
}

self.addEventListener("install", function (event) {
  event.waitUntil(caches.open(CACHE).then(function (cache) {
    return Promise.all(PAGES.concat(ASSETS).map(function (url) {
      return fetch(url, {credentials: "same-origin"}).then(function (r) { return keep(cache, url, r); })
        .catch(function () { return null; });
    }));
  }).then(function () { return self.skipWaiting(); }));
});

self.addEventListener("activate", function (event) {
  event.waitUntil(caches.keys().then(function (keys) {
    return Promise.all(keys.filter(function (k) { return k.indexOf("village-") === 0 && k !== CACHE; })
      .map(function (k) { return caches.delete(k); }));
  }).then(function () { return self.clients.claim(); }));
});

self.addEventListener("fetch", function (event) {
  var req = event.request;
  if (req.method !== "GET") return;  // submissions go to the network (the page queues them offline)
  var url = new URL(req.url);
  if (url.origin !== self.location.origin) return;
  if (url.pathname.indexOf("/static/") === 0) {
    event.respondWith(caches.open(CACHE).then(function (cache) {
      return cache.match(url.pathname).then(function (hit) {
        var fresh = fetch(req).then(function (r) { return keep(cache, url.pathname, r); });
        if (hit) { event.waitUntil(fresh.catch(function () { return null; })); return hit; }
        return fresh;
      });
    }));
    return;
  }
  if (req.mode === "navigate" && PAGES.indexOf(url.pathname) >= 0) {
    event.respondWith(caches.open(CACHE).then(function (cache) {
      return fetch(req).then(function (r) {
        return url.search ? r : keep(cache, url.pathname, r);
      }).catch(function () {
        return cache.match(url.pathname).then(function (hit) { return hit || cache.match("/village/demand/new"); })
          .then(function (hit) { return hit || Response.error(); });
      });
    }));
    return;
  }
  if (req.mode === "navigate" && url.pathname.indexOf("/village") === 0) {
    // any other village page offline: the form, which works without a network
    event.respondWith(fetch(req).catch(function () {
      return caches.match("/village/demand/new").then(function (hit) { return hit || Response.error(); });
    }));
  }
});
