/* The run page's filters by scorer and tag: inlined, admitted by its hash in the CSP. */
(function () {
  "use strict";
  var metric = document.getElementById("filter-metric");
  var tag = document.getElementById("filter-tag");
  var count = document.getElementById("filter-count");
  if (!metric || !tag) { return; }
  function has(element, name, wanted) {
    if (!wanted) { return true; }
    var values = JSON.parse(element.getAttribute(name) || "[]");
    return values.indexOf(wanted) >= 0;
  }
  function apply() {
    var items = document.querySelectorAll("[data-case]");
    var shown = 0;
    for (var i = 0; i < items.length; i++) {
      var item = items[i];
      var visible = has(item, "data-metrics", metric.value) && has(item, "data-tags", tag.value);
      item.hidden = !visible;
      if (visible && item.classList.contains("case")) { shown += 1; }
    }
    if (count) { count.textContent = shown + " shown"; }
  }
  metric.addEventListener("change", apply);
  tag.addEventListener("change", apply);
  apply();
})();
