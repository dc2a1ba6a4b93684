/* The investigation page's breakdown charts (Chart.js, vendored): each canvas.ledger-chart names the
   JSON its page wrote with json_script (data-chart), and is drawn from it as stacked horizontal bars.
   The table beside each canvas holds the same counts: without JavaScript the canvas stays hidden and
   the table is the breakdown. The run's section arrives again by htmx when the run finishes, so the
   charts in what htmx swaps in are drawn too. */
(function () {
  "use strict";
  // Definite in a dark red, potential in a dark amber: each passes 3:1 against white (WCAG 1.4.11).
  var COLOURS = { definite: "#a4161a", potential: "#8a5a00", units: "#0b4f9c" };

  function draw(root) {
    if (typeof window.Chart === "undefined" || !root || !root.querySelectorAll) {
      return;
    }
    root.querySelectorAll("canvas.ledger-chart").forEach(function (canvas) {
      var source = document.getElementById(canvas.dataset.chart);
      if (!source || window.Chart.getChart(canvas)) {
        return;
      }
      var data = JSON.parse(source.textContent);
      // A bar's room per group, so that long lists stay readable rather than squeezed.
      canvas.parentElement.style.height = 4 + 2 * data.labels.length + "rem";
      canvas.hidden = false;
      new window.Chart(canvas, {
        type: "bar",
        data: {
          labels: data.labels,
          datasets: data.series.map(function (series) {
            return {
              label: series.label,
              data: series.data,
              backgroundColor: COLOURS[series.kind || "units"],
            };
          }),
        },
        options: {
          indexAxis: "y",
          animation: false,
          responsive: true,
          maintainAspectRatio: false,
          scales: {
            x: { stacked: true, beginAtZero: true, ticks: { precision: 0 } },
            y: { stacked: true },
          },
          plugins: { legend: { display: data.series.length > 1 } },
        },
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    draw(document);
  });
  document.addEventListener("htmx:load", function (event) {
    draw(event.target);
  });
})();
