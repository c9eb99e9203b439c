// Draws the charts of the metrics and revenue pages with Chart.js (served from node_modules).
// The figures come from the page itself (#chart-data, the same ones as the tables under each
// chart): no request of its own, no network. A canvas gets data-drawn="1" once drawn.
(function () {
  "use strict";
  var PALETTE = ["#1d4ed8", "#15803d", "#b45309", "#7c3aed", "#be123c", "#0e7490", "#4d7c0f", "#a21caf"];
  function draw() {
    var source = document.getElementById("chart-data");
    if (!source || typeof Chart === "undefined") return;
    var specs = JSON.parse(source.textContent);
    document.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      var spec = specs[canvas.dataset.chart];
      if (!spec) return;
      var datasets = spec.datasets.map(function (d, i) {
        var colour = PALETTE[i % PALETTE.length];
        var line = spec.type === "line" || d.kind === "line";
        return {
          label: d.label,
          data: d.data,
          type: line ? "line" : "bar",
          order: line ? 0 : 1,  // lines in front of bars
          stack: line ? "line" : "bars",  // a line is never stacked on the bars
          borderColor: colour,
          backgroundColor: line ? colour : colour + "b3",
          spanGaps: true,
          tension: 0.2
        };
      });
      new Chart(canvas, {
        type: spec.type,
        data: { labels: spec.labels, datasets: datasets },
        options: {
          animation: false,
          responsive: true,
          maintainAspectRatio: false,
          interaction: { mode: "index", intersect: false },
          scales: {
            x: { stacked: !!spec.stacked },
            y: { stacked: !!spec.stacked, beginAtZero: true,
                 ticks: spec.percent ? { callback: function (v) { return v + "%"; } } : {} }
          }
        }
      });
      canvas.dataset.drawn = "1";
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw);
  else draw();
})();
