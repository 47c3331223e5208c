// sluice console: draws the overview's throughput charts (inline SVG) from
// /console/api/throughput, refreshed every 2 s. Nothing else on the pages needs script.
"use strict";
(function () {
  const NS = "http://www.w3.org/2000/svg";
  const W = 600, H = 160, PAD = 36;

  function el(name, attrs, text) {
    const e = document.createElementNS(NS, name);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function human(v) {
    const units = ["", "k", "M", "G", "T"];
    let i = 0;
    while (v >= 1000 && i < units.length - 1) { v /= 1000; i++; }
    return (i === 0 ? Math.round(v) : v.toFixed(1)) + units[i];
  }

  function draw(svg, points) {
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    const max = Math.max(1, ...points.map((p) => p[1]));
    svg.appendChild(el("line", { x1: PAD, y1: H - 16, x2: W, y2: H - 16 }));
    svg.appendChild(el("line", { x1: PAD, y1: 6, x2: W, y2: 6 }));
    svg.appendChild(el("text", { x: 2, y: 14 }, human(max)));
    svg.appendChild(el("text", { x: 2, y: H - 18 }, "0"));
    if (points.length < 2) {
      svg.appendChild(el("text", { x: PAD + 8, y: H / 2 }, "collecting samples…"));
      return;
    }
    const t0 = points[0][0], t1 = points[points.length - 1][0];
    const span = Math.max(1, t1 - t0);
    const xy = points.map((p) => {
      const x = PAD + ((p[0] - t0) / span) * (W - PAD - 4);
      const y = H - 16 - (p[1] / max) * (H - 26);
      return x.toFixed(1) + "," + y.toFixed(1);
    });
    svg.appendChild(el("polyline", { points: xy.join(" ") }));
    svg.appendChild(el("text", { x: W - 150, y: H - 2 }, "now: " + human(points[points.length - 1][1]) + "/s"));
  }

  async function refresh() {
    const records = document.getElementById("chart-records");
    const bytes = document.getElementById("chart-bytes");
    const fetched = document.getElementById("chart-fetched");
    if (!records || !bytes) return;
    try {
      const r = await fetch("/console/api/throughput", { cache: "no-store" });
      const series = await r.json();
      draw(records, series.map((s) => [s[0], s[1]]));
      draw(bytes, series.map((s) => [s[0], s[2]]));
      if (fetched) draw(fetched, series.map((s) => [s[0], s[3]]));
      records.setAttribute("data-samples", String(series.length));
    } catch (e) {
      // The broker may be restarting; the next tick tries again.
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    if (!document.getElementById("chart-records")) return;
    refresh();
    setInterval(refresh, 2000);
  });
})();
