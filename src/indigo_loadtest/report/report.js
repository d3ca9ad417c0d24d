// Draws the charts of an indigo-loadtest report from the JSON in #report-data, with the
// uPlot library embedded in the same file (no network). Every drawn chart records how
// many data points it holds in its data-points attribute (the tests read it), and
// script errors are collected in body[data-errors].
(function () {
  "use strict";
  var errors = [];
  window.addEventListener("error", function (e) {
    errors.push(String(e.message));
    document.body.setAttribute("data-errors", errors.join(" | "));
  });
  window.__charts = [];
  var data = JSON.parse(document.getElementById("report-data").textContent);

  function fmtNum(v) {
    if (v == null || !isFinite(v)) return "–";
    var a = Math.abs(v);
    if (a >= 100000) return v.toExponential(2);
    if (a >= 100) return v.toFixed(0);
    if (a >= 10) return v.toFixed(1);
    return v.toFixed(2);
  }
  function fmtValue(v, unit) {
    if (v == null || !isFinite(v)) return "–";
    if (unit === "ms" && Math.abs(v) >= 1000) return fmtNum(v / 1000) + " s";
    return fmtNum(v) + (unit ? " " + unit : "");
  }
  function fmtTick(v) {  // the unit is in the chart's caption
    return v == null ? "" : fmtNum(v);
  }
  function fmtTime(s) {
    if (s == null) return "";
    if (s < 120) return (Math.round(s * 10) / 10) + "s";  // ticks of short runs are < 1 s apart
    var m = Math.floor(s / 60), sec = Math.round(s - m * 60);
    if (m >= 60) return Math.floor(m / 60) + "h" + String(m % 60).padStart(2, "0") + "m";
    return m + ":" + String(sec).padStart(2, "0");
  }
  function width(el) {
    return Math.max(320, (el.parentNode.clientWidth || 900) - 8);
  }
  function countPoints(columns) {
    var n = 0;
    columns.forEach(function (col) {
      col.forEach(function (v) { if (v != null && isFinite(v)) n++; });
    });
    return n;
  }
  var plots = [];

  // A bench sweep's charts have a rate on x (spec.xunit) and marks: vertical lines
  // (spec.marks: the knee, the SLO answer, saturated points) and horizontal ones
  // (spec.hmarks: SLO bounds); both axes start at 0 and reach the marks.
  function finiteOf(values) {
    return values.filter(function (v) { return v != null && isFinite(v); });
  }
  function upTo(values) {
    var top = Math.max.apply(null, [0].concat(finiteOf(values)));
    return top > 0 ? top * 1.08 : 1;
  }
  function around(values) {  // the points' span, padded (one point: ±50%)
    var v = finiteOf(values), lo = Math.min.apply(null, v), hi = Math.max.apply(null, v);
    var pad = hi > lo ? (hi - lo) * 0.06 : Math.abs(hi) * 0.5 || 1;
    return [Math.max(0, lo - pad), hi + pad];
  }
  function drawMarks(el, spec) {
    return function (u) {
      var ctx = u.ctx, r = uPlot.pxRatio, drawn = [], b = u.bbox;
      ctx.save();
      ctx.font = (11 * r) + "px system-ui,sans-serif";
      ctx.textAlign = "left";
      ctx.textBaseline = "alphabetic";
      ctx.lineWidth = 1.5 * r;
      ctx.setLineDash([5 * r, 4 * r]);
      (spec.marks || []).forEach(function (m, i) {
        var x = u.valToPos(m.x, "x", true);
        if (!isFinite(x) || x < b.left - 1 || x > b.left + b.width + 1) return;
        ctx.strokeStyle = ctx.fillStyle = m.color;
        ctx.beginPath(); ctx.moveTo(x, b.top); ctx.lineTo(x, b.top + b.height); ctx.stroke();
        ctx.fillText(m.label, x + 4 * r, b.top + (12 + 13 * i) * r);
        drawn.push(m.label);
      });
      (spec.hmarks || []).forEach(function (m) {
        var y = u.valToPos(m.y, "y", true);
        if (!isFinite(y) || y < b.top - 1 || y > b.top + b.height + 1) return;
        ctx.strokeStyle = ctx.fillStyle = m.color;
        ctx.beginPath(); ctx.moveTo(b.left, y); ctx.lineTo(b.left + b.width, y); ctx.stroke();
        ctx.fillText(m.label, b.left + 4 * r, y - 4 * r);
        drawn.push(m.label);
      });
      ctx.restore();
      el.setAttribute("data-marks", drawn.join(" | "));
    };
  }
  function rateAxes(el, spec, opts) {
    var ys = [];
    spec.series.forEach(function (s) { ys = ys.concat(s.values); });
    var xrange = around(spec.x.concat((spec.marks || []).map(function (m) { return m.x; })));
    var ymax = upTo(ys.concat((spec.hmarks || []).map(function (m) { return m.y; })));
    opts.scales = { x: { time: false, range: function () { return xrange; } },
                    y: { range: function () { return [0, ymax]; } } };
    opts.series[0] = { label: spec.xlabel, value: function (u, v) { return fmtValue(v, spec.xunit); } };
    opts.axes[0] = { values: function (u, vals) { return vals.map(fmtTick); } };
    opts.hooks = { draw: [drawMarks(el, spec)] };
  }

  function drawChart(spec) {
    var el = document.getElementById(spec.id);
    var series = [{ label: "time", value: function (u, v) { return fmtTime(v); } }];
    var columns = [spec.x];
    spec.series.forEach(function (s) {
      series.push({
        label: s.label, stroke: s.color, width: 1.5, dash: s.dash ? [6, 4] : undefined,
        spanGaps: !!spec.spanGaps, points: { show: spec.x.length < 60 },
        value: function (u, v) { return fmtValue(v, spec.unit); },
      });
      columns.push(s.values);
    });
    var opts = {
      width: width(el), height: 230, series: series,
      scales: { x: { time: false } },
      axes: [
        { values: function (u, vals) { return vals.map(fmtTime); } },
        { size: 56, values: function (u, vals) { return vals.map(fmtTick); } },
      ],
    };
    if (spec.xunit) rateAxes(el, spec, opts);
    record(el, spec, new uPlot(opts, columns, el));
  }

  // The points the chart itself holds (uPlot's data), and whether it drew a canvas.
  function record(el, spec, plot) {
    plots.push([el, plot]);
    var points = spec.edges ? plot.data[1].filter(function (c) { return c > 0; }).length
      : countPoints(plot.data.slice(1));
    el.setAttribute("data-points", String(points));
    el.setAttribute("data-canvas", el.querySelector("canvas") ? "1" : "0");
    window.__charts.push({ id: spec.id, points: points });
  }

  function drawHistogram(spec) {
    var el = document.getElementById(spec.id);
    var x = spec.edges.slice(0, -1);
    var columns = [x, spec.counts];
    var opts = {
      width: width(el), height: 200,
      series: [
        { label: spec.unit || "value", value: function (u, v) { return fmtValue(v, spec.unit); } },
        { label: "samples", fill: "rgba(47,111,235,0.35)", stroke: "#2f6feb",
          paths: uPlot.paths.bars({ align: 1, size: [1, 100] }), points: { show: false } },
      ],
      scales: { x: { time: false, distr: 3, range: function () {
        return [spec.edges[0], spec.edges[spec.edges.length - 1]]; } } },
      axes: [{ values: function (u, vals) {
        return vals.map(function (v) { return v == null ? "" : fmtValue(v, spec.unit); }); } },
        { size: 50 }],
    };
    record(el, spec, new uPlot(opts, columns, el));
  }

  function sortable(table) {
    var heads = table.querySelectorAll("th");
    heads.forEach(function (th, col) {
      th.addEventListener("click", function () {
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        var asc = th.getAttribute("data-sort") !== "asc";
        heads.forEach(function (h) { h.removeAttribute("data-sort"); });
        th.setAttribute("data-sort", asc ? "asc" : "desc");
        rows.sort(function (a, b) {
          var x = a.cells[col].getAttribute("data-v"), y = b.cells[col].getAttribute("data-v");
          var nx = parseFloat(x), ny = parseFloat(y);
          var c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : String(x).localeCompare(String(y));
          return asc ? c : -c;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  }

  (data.charts || []).forEach(drawChart);
  (data.histograms || []).forEach(drawHistogram);
  document.querySelectorAll("table.sortable").forEach(sortable);
  function resize() {
    plots.forEach(function (p) { p[1].setSize({ width: width(p[0]), height: p[1].height }); });
  }
  window.addEventListener("resize", resize);
  window.addEventListener("beforeprint", resize);

  // run --dashboard: redraw from the server's latest points every `period` seconds.
  function redraw(live) {
    plots.forEach(function (p) { p[1].destroy(); });
    plots = [];
    window.__charts = [];
    document.getElementById("live-charts").innerHTML = live.slots;
    live.charts.forEach(drawChart);
    document.getElementById("live-status").textContent = live.status;
    document.body.setAttribute("data-updates",
      String(Number(document.body.getAttribute("data-updates") || 0) + 1));
  }
  function poll() {
    fetch(data.live).then(function (r) { return r.json(); }).then(function (live) {
      redraw(live);
      setTimeout(poll, data.period * 1000);
    }, function () {
      document.getElementById("live-status").textContent =
        "the run has ended (or this page lost its server): see the run's HTML report";
    });
  }
  if (data.live) setTimeout(poll, data.period * 1000);
  document.body.setAttribute("data-ready", "1");
})();
