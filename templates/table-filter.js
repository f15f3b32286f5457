/* Progressive enhancement for the HTML report: a filter box above each long table.
   The report reads completely without it. It reads cell text (textContent) and only toggles
   the hidden attribute of rows; it never writes markup, so report data cannot become code. */
(function () {
  "use strict";
  var tables = document.querySelectorAll("table[data-filter]");
  Array.prototype.forEach.call(tables, function (table) {
    var body = table.tBodies[0];
    if (!body || body.rows.length < 10) {
      return;
    }
    var bar = document.createElement("div");
    bar.className = "filter-bar";
    var input = document.createElement("input");
    input.type = "search";
    input.placeholder = "Filter " + body.rows.length + " rows";
    input.setAttribute("aria-label", "Filter the rows of the table below");
    var count = document.createElement("span");
    count.className = "filter-count";
    count.setAttribute("aria-live", "polite");
    bar.appendChild(input);
    bar.appendChild(count);
    var anchor = table.parentNode.classList.contains("table-wrap") ? table.parentNode : table;
    anchor.parentNode.insertBefore(bar, anchor);
    var texts = null;
    var timer = null;
    input.addEventListener("input", function () {
      window.clearTimeout(timer);
      timer = window.setTimeout(function () {
        var rows = body.rows;
        if (texts === null) {
          texts = Array.prototype.map.call(rows, function (row) {
            return row.textContent.toLowerCase();
          });
        }
        var query = input.value.trim().toLowerCase();
        var shown = 0;
        for (var i = 0; i < rows.length; i += 1) {
          var match = query === "" || texts[i].indexOf(query) !== -1;
          rows[i].hidden = !match;
          if (match) {
            shown += 1;
          }
        }
        count.textContent = query === "" ? "" : shown + " of " + rows.length + " rows";
      }, 150);
    });
  });
})();
