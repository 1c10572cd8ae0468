// HQ pages: live alerts (one EventSource per board; the console keeps one upstream stream),
// the days-of-supply chart (ECharts) and the trips map (Leaflet, with or without tiles).
(function () {
  "use strict";
  var zh = document.documentElement.lang === "zh-CN";

  function liveAlerts() {
    var list = document.getElementById("alerts-live");
    if (!list || !window.EventSource) return;
    var state = document.getElementById("alerts-live-state");
    var source = new EventSource("/events/alerts");
    source.onopen = function () { if (state) { state.textContent = state.dataset.liveLabel; state.className = "pill ok"; } };
    source.onerror = function () { if (state) { state.textContent = "…"; state.className = "pill warn"; } };
    source.addEventListener("alert", function (e) {
      var a = JSON.parse(e.data);
      if (a.action === "reload") { htmx.trigger("#panel-alerts", "refresh"); return; }
      var li = document.createElement("li");
      li.className = "alert sev-" + a.severity + " new";
      li.dataset.alertId = a.alert_id;
      var strong = document.createElement("strong");
      strong.textContent = zh ? a.title_zh : a.title_en;
      var meta = document.createElement("span");
      meta.className = "muted";
      meta.textContent = " " + a.action + " · " + a.depot + (a.zone ? "/" + a.zone : "") + " · " + a.rule_code;
      li.append(strong, meta);
      list.prepend(li);
      while (list.children.length > 20) list.lastChild.remove();
      var none = document.getElementById("no-alerts");
      if (none) none.remove();
    });
  }

  function charts(root) {
    if (!window.echarts) return;
    (root || document).querySelectorAll("[data-chart=days-of-supply]").forEach(function (el) {
      var data = JSON.parse(document.getElementById("chart-days-of-supply").textContent);
      var chart = echarts.init(el, null, {renderer: "svg"});
      chart.setOption({
        aria: {enabled: true},
        tooltip: {trigger: "axis"},
        legend: {top: 0, data: [zh ? "可供天数" : "days of supply", zh ? "储备底线" : "reserve floor"]},
        grid: {top: 50, left: 50, right: 10, bottom: 70},
        xAxis: {type: "category", data: data.groups, axisLabel: {rotate: 30}},
        yAxis: {type: "value", name: zh ? "天" : "days"},
        series: [
          {name: zh ? "可供天数" : "days of supply", type: "bar", data: data.days},
          {name: zh ? "储备底线" : "reserve floor", type: "line", step: "middle", data: data.floor},
        ],
      });
      window.addEventListener("resize", function () { chart.resize(); });
    });
  }

  function tripMap() {
    var el = document.getElementById("trip-map");
    if (!el || !window.L) return;
    var data = JSON.parse(document.getElementById("map-data").textContent);
    var map = L.map(el, {attributionControl: !!data.tiles});
    if (data.tiles) L.tileLayer(data.tiles, {maxZoom: 18}).addTo(map);
    var bounds = [];
    var colors = ["#0b5cad", "#b42318", "#1a7f37", "#9a6700", "#6639ba", "#bf3989"];
    data.depots.forEach(function (d) {
      L.rectangle([[d[0] - 0.002, d[1] - 0.002], [d[0] + 0.002, d[1] + 0.002]], {color: "#12324f", weight: 2})
        .bindTooltip(d[2]).addTo(map);
      bounds.push([d[0], d[1]]);
    });
    data.routes.forEach(function (r, i) {
      var color = colors[i % colors.length];
      var path = r.depot ? [[r.depot[0], r.depot[1]]] : [];
      r.stops.forEach(function (s) {
        path.push([s.at[0], s.at[1]]);
        bounds.push([s.at[0], s.at[1]]);
        L.circleMarker([s.at[0], s.at[1]], {radius: 6, color: color, fillColor: s.delivered ? "#1a7f37" : "#fff", fillOpacity: 1})
          .bindTooltip(r.trip + " #" + s.seq + " " + s.at[2]).addTo(map);
      });
      if (path.length > 1) L.polyline(path, {color: color, weight: 3, opacity: 0.8}).addTo(map);
    });
    if (bounds.length) map.fitBounds(bounds, {padding: [20, 20]}); else map.setView([30.27, 120.15], 11);
  }

  document.addEventListener("htmx:afterSwap", function (e) { charts(e.target); });
  document.addEventListener("DOMContentLoaded", function () { liveAlerts(); charts(); tripMap(); });
})();
