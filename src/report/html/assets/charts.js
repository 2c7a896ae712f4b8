// Draws the charts of a cacherate run report with uPlot (embedded in the
// same page). The chart specs come from the JSON in #report-charts, built
// by src/report/html/charts.rs: x values, series on one or two y axes,
// bands between a series pair, horizontal limit lines, labelled markers
// and shaded regions. Hovering a chart shows every series' value in its
// legend. Every label is set as text, never as HTML.
(function () {
  "use strict";
  var source = document.getElementById("report-charts");
  if (!source || typeof uPlot === "undefined") return;
  var specs = JSON.parse(source.textContent);
  var HEIGHT = 300;
  var ratio = uPlot.pxRatio || 1;
  var whole = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });

  // A value as the legend shows it, with its unit.
  function format(unit, v) {
    if (v === null || v === undefined || !isFinite(v)) return "–";
    switch (unit) {
      case "tps": return (Math.abs(v) >= 100 ? whole.format(v) : v.toFixed(1)) + " tok/s";
      case "seconds": return v.toFixed(3) + " s";
      case "ms": return v.toFixed(2) + " ms";
      case "percent": return v.toFixed(0) + " %";
      case "count": return whole.format(v);
      case "elapsed": return v.toFixed(2) + " s";
      default: return String(v);
    }
  }

  // A tick label: short, no unit (the axis label has it).
  function tick(unit) {
    return function (u, splits) {
      return splits.map(function (v) {
        if (v === null || v === undefined) return "";
        if (unit === "tps") {
          var a = Math.abs(v);
          if (a >= 1e6) return +(v / 1e6).toFixed(2) + "M";
          if (a >= 1e3) return +(v / 1e3).toFixed(1) + "k";
          return String(+v.toFixed(1));
        }
        return String(+v.toPrecision(6));
      });
    };
  }

  function finiteMax(values) {
    var m = -Infinity;
    values.forEach(function (v) { if (v !== null && isFinite(v) && v > m) m = v; });
    return m;
  }

  // From zero to a little over the highest value or limit line.
  function yRange(spec, axis) {
    var lines = spec.hlines.filter(function (h) { return h.axis === axis; })
      .map(function (h) { return h.value; });
    return function (u, min, max) {
      var high = finiteMax(lines.concat([max]));
      if (!isFinite(high) || high <= 0) high = 1;
      return [0, high * 1.08];
    };
  }

  function xRange(spec) {
    return function (u, min, max) {
      if (min === null || max === null) return [0, 1];
      if (spec.x.unit === "elapsed") return [0, max > 0 ? max : 1];
      var pad = Math.max((max - min) * 0.04, spec.x.unit === "percent" ? 2 : 1);
      return [Math.max(0, min - pad), max + pad];
    };
  }

  function font(size, weight) {
    return (weight || "") + " " + Math.round(size * ratio) + "px system-ui, sans-serif";
  }

  // Shaded stretches of x, under the series.
  function drawRegions(spec) {
    return function (u) {
      var ctx = u.ctx, box = u.bbox;
      ctx.save();
      spec.regions.forEach(function (r) {
        var from = Math.max(u.valToPos(r.from, "x", true), box.left);
        var to = Math.min(u.valToPos(r.to, "x", true), box.left + box.width);
        if (to <= from) return;
        ctx.fillStyle = r.color;
        ctx.fillRect(from, box.top, to - from, box.height);
        if (r.label) {
          ctx.fillStyle = "#333";
          ctx.font = font(11);
          ctx.textAlign = "left";
          ctx.textBaseline = "top";
          ctx.fillText(r.label, from + 3 * ratio, box.top + 3 * ratio);
        }
      });
      ctx.restore();
    };
  }

  // Limit lines and markers, over the series.
  function drawOverlays(spec) {
    return function (u) {
      var ctx = u.ctx, box = u.bbox;
      ctx.save();
      spec.hlines.forEach(function (h) {
        var y = u.valToPos(h.value, h.axis === 2 ? "y2" : "y", true);
        if (y < box.top || y > box.top + box.height) return;
        ctx.strokeStyle = h.color;
        ctx.lineWidth = 2 * ratio;
        ctx.setLineDash([8 * ratio, 5 * ratio]);
        ctx.beginPath();
        ctx.moveTo(box.left, y);
        ctx.lineTo(box.left + box.width, y);
        ctx.stroke();
        ctx.setLineDash([]);
        ctx.fillStyle = h.color;
        ctx.font = font(12, "600");
        ctx.textAlign = "right";
        ctx.textBaseline = "bottom";
        ctx.fillText(h.label, box.left + box.width - 4 * ratio, y - 3 * ratio);
      });
      spec.markers.forEach(function (m, i) {
        var x = u.valToPos(m.x, "x", true);
        var y = u.valToPos(m.y, m.axis === 2 ? "y2" : "y", true);
        ctx.strokeStyle = "#000";
        ctx.lineWidth = 2.5 * ratio;
        ctx.beginPath();
        ctx.arc(x, y, 8 * ratio, 0, 2 * Math.PI);
        ctx.stroke();
        ctx.fillStyle = "#000";
        ctx.font = font(12, "600");
        var right = x > box.left + box.width * 0.7;
        ctx.textAlign = right ? "right" : "left";
        ctx.textBaseline = "middle";
        // Markers of several curves at one level would overlap: step them.
        var dy = (12 + 14 * (i % 3)) * ratio;
        var ty = Math.max(box.top + 8 * ratio, y - dy);
        ctx.fillText(m.label, x + (right ? -11 : 11) * ratio, ty);
      });
      ctx.restore();
    };
  }

  function build(spec, el) {
    var series = [{ label: spec.x.short || spec.x.label, value: function (u, v) { return format(spec.x.unit, v); } }];
    spec.series.forEach(function (s) {
      var unit = s.axis === 2 && spec.y2 ? spec.y2.unit : spec.y.unit;
      var o = {
        label: s.label,
        stroke: s.color,
        width: 2,
        scale: s.axis === 2 ? "y2" : "y",
        spanGaps: s.span_gaps,
        value: function (u, v) { return format(unit, v); },
        points: { show: true, size: 6, fill: s.color }
      };
      if (s.style === "dashed") { o.dash = [6, 4]; o.points = { show: false }; }
      if (s.style === "plain") o.points = { show: false };
      if (s.style === "points") {
        o.paths = function () { return null; };
        o.points = { show: true, size: 11, width: 2, stroke: s.color, fill: "#fff" };
      }
      if (s.style === "edge") {
        o.width = 1;
        o.dash = [2, 3];
        o.points = { show: false };
      }
      series.push(o);
    });
    var axes = [
      { label: spec.x.label, values: tick(spec.x.unit) },
      { label: spec.y.label, scale: "y", values: tick(spec.y.unit), size: 64 }
    ];
    var scales = { x: { time: false, range: xRange(spec) }, y: { range: yRange(spec, 1) } };
    if (spec.y2) {
      axes.push({ label: spec.y2.label, scale: "y2", side: 1, values: tick(spec.y2.unit), size: 64, grid: { show: false } });
      scales.y2 = { range: yRange(spec, 2) };
    }
    var data = [spec.xs].concat(spec.series.map(function (s) { return s.values; }));
    var opts = {
      title: spec.title,
      width: Math.max(el.clientWidth, 320),
      height: HEIGHT,
      series: series,
      axes: axes,
      scales: scales,
      bands: spec.bands.map(function (b) {
        return { series: [b.upper + 1, b.lower + 1], fill: b.color };
      }),
      hooks: { drawAxes: [drawRegions(spec)], draw: [drawOverlays(spec)] },
      cursor: spec.sync ? { sync: { key: spec.sync } } : {},
      legend: { live: true }
    };
    return new uPlot(opts, data, el);
  }

  var plots = [];
  specs.forEach(function (spec) {
    var el = document.getElementById(spec.id);
    if (el) plots.push({ el: el, plot: build(spec, el) });
  });
  window.addEventListener("resize", function () {
    plots.forEach(function (p) {
      p.plot.setSize({ width: Math.max(p.el.clientWidth, 320), height: HEIGHT });
    });
  });
})();
