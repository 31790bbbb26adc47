"""The report's stylesheet, its one script, and the Content-Security-Policy that admits only them.

Both are constants of this package, inlined into every page so a page works on its own from
``file://``. The policy allows exactly these two blocks by hash, no other script or style, no
network at all (``default-src 'none'``): an injected tag that escaped escaping still could not
run, and the browser test would see the violation as a console error.
"""

from __future__ import annotations

import base64
import hashlib

__all__ = ["CSP", "CSS", "SCRIPT"]

CSS = """
:root { --pass: #1a7f37; --fail: #cf222e; --warn: #9a6700; --muted: #57606a; --line: #d0d7de;
  --bg: #f6f8fa; --ink: #1f2328; --accent: #0969da; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: var(--ink); background: #fff; }
header.top { background: var(--ink); color: #fff; padding: 8px 24px; font-size: 13px; }
header.top a { color: #fff; font-weight: 600; text-decoration: none; }
header.top .meta { color: #c9d1d9; margin-left: 12px; }
main { max-width: 1120px; margin: 0 auto; padding: 16px 24px 48px; }
h1 { font-size: 26px; margin: 8px 0 2px; }
h2 { font-size: 18px; margin: 28px 0 8px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
h3 { font-size: 15px; margin: 0 0 6px; }
a { color: var(--accent); }
p.lede { color: var(--muted); margin: 0 0 12px; }
.crumbs { color: var(--muted); font-size: 13px; margin-top: 4px; }
table { border-collapse: collapse; width: 100%; margin: 6px 0 12px; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: var(--bg); font-weight: 600; font-size: 12px; text-transform: uppercase;
  letter-spacing: .03em; color: var(--muted); }
td.num { font-variant-numeric: tabular-nums; white-space: nowrap; }
td.reason, .small { color: var(--muted); font-size: 12px; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px;
  font-weight: 600; border: 1px solid currentColor; white-space: nowrap; }
.pass { color: var(--pass); } .fail { color: var(--fail); } .inconclusive, .warn { color: var(--warn); }
.none, .ungated, .hold { color: var(--muted); }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(330px, 1fr)); gap: 14px; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 14px 16px; }
.card h2 { border: 0; margin: 0 0 6px; padding: 0; }
.verdict { border-left: 5px solid var(--muted); background: var(--bg); padding: 10px 14px;
  margin: 12px 0; border-radius: 0 6px 6px 0; }
.verdict.pass { border-color: var(--pass); } .verdict.fail { border-color: var(--fail); }
.verdict.warn, .verdict.inconclusive { border-color: var(--warn); }
.verdict p { margin: 0; color: var(--ink); font-weight: 600; font-size: 15px; }
.verdict ul { margin: 6px 0 0; padding-left: 20px; color: var(--ink); }
.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: 8px 0; }
.facts dt { color: var(--muted); } .facts dd { margin: 0; }
.ladder { display: flex; gap: 0; margin: 8px 0 12px; }
.ladder span { flex: 1; text-align: center; padding: 6px 4px; border: 1px solid var(--line);
  background: var(--bg); color: var(--muted); font-weight: 600; }
.ladder span.held { background: var(--ink); color: #fff; }
.ladder span.next { border: 2px dashed var(--accent); color: var(--accent); }
.incident { border: 1px solid var(--fail); border-radius: 6px; padding: 10px 14px; margin: 8px 0; }
.incident.closed { border-color: var(--line); }
.chart { margin: 8px 0 18px; }
.chart h3 { margin-bottom: 2px; }
svg.trend { max-width: 100%; height: auto; font-size: 11px; }
svg .grid { stroke: #eaeef2; } svg .axis { stroke: #8c959f; }
svg .tick { fill: var(--muted); }
svg .band { fill: #0969da; fill-opacity: .13; stroke: none; }
svg .line { fill: none; stroke: #0969da; stroke-width: 1.5; }
svg .pt { stroke: #fff; stroke-width: .8; } svg .pt.pass { fill: var(--pass); }
svg .pt.fail { fill: var(--fail); } svg .pt.inconclusive { fill: #bf8700; }
svg .pt.ungated { fill: #0969da; } svg .pt.nodata { stroke: var(--fail); stroke-width: 1.5; fill: none; }
svg .thr { stroke-width: 1.5; } svg .thr.current { stroke: var(--fail); stroke-dasharray: 6 3; }
svg .thr.next { stroke: #8250df; stroke-dasharray: 2 3; }
svg .thr-label.current { fill: var(--fail); } svg .thr-label.next { fill: #8250df; }
svg .ver { stroke: #57606a; stroke-dasharray: 1 3; } svg .ver-label { fill: var(--ink); font-weight: 600; }
svg .ev { stroke-width: 1.5; } svg .ev.escalate { fill: #bf8700; stroke: #9a6700; }
svg .ev.rollback, svg .ev.rollback_refused { fill: var(--fail); stroke: var(--fail); }
svg .ev.promote, svg .ev.approve { fill: var(--pass); stroke: var(--pass); }
svg .ev.demote { fill: #8250df; stroke: #8250df; } svg a:hover .pt { stroke: var(--ink); }
.legend { color: var(--muted); font-size: 12px; display: flex; flex-wrap: wrap; gap: 4px 16px; }
.legend svg { vertical-align: middle; }
.filters { display: flex; gap: 16px; align-items: center; background: var(--bg); padding: 8px 12px;
  border-radius: 6px; position: sticky; top: 0; z-index: 1; }
.case { border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; margin: 10px 0; }
.case .label { color: var(--muted); font-size: 12px; text-transform: uppercase; margin: 8px 0 2px; }
.text { white-space: pre-wrap; background: var(--bg); padding: 8px 10px; border-radius: 4px;
  margin: 0; font-family: inherit; overflow-wrap: anywhere; }
mark.masked { background: #ffebe9; color: var(--fail); font-weight: 600; padding: 0 2px; }
.chip { display: inline-block; background: var(--bg); border: 1px solid var(--line);
  border-radius: 10px; padding: 0 7px; font-size: 12px; margin-right: 4px; }
.chip.fail { border-color: var(--fail); }
.note { background: #fff8c5; border: 1px solid #d4a72c; padding: 8px 12px; border-radius: 6px; margin: 8px 0; }
details summary { cursor: pointer; color: var(--accent); }
pre.json { white-space: pre-wrap; font-size: 12px; background: var(--bg); padding: 8px; overflow-wrap: anywhere; }
"""

SCRIPT = """
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
"""


def _hash(text: str) -> str:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


CSP = (
    "default-src 'none'; "
    f"style-src {_hash(CSS)}; "
    f"script-src {_hash(SCRIPT)}; "
    "img-src data:; base-uri 'none'; form-action 'none'"
)
"""Only the inline stylesheet and script above, by hash; nothing from anywhere else."""
