"""The report page's style sheet and its small script (sorting, filtering, and an image-load check)."""

from __future__ import annotations

import base64
import hashlib

CSS = """
:root { --ok: #2e7d32; --warn: #ef8f00; --bad: #c62828; --grey: #757575; --line: #e0e0e0; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0; color: #212121;
       background: #fafafa; }
header, main { max-width: 1280px; margin: 0 auto; padding: 16px 24px; }
header { background: #263238; color: #eceff1; max-width: none; }
header h1 { margin: 0 0 4px; font-size: 20px; }
header .meta { color: #b0bec5; font-size: 12px; }
.stats { display: flex; flex-wrap: wrap; gap: 12px; margin: 16px 0; }
.stat { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 8px 14px; min-width: 120px; }
.stat b { display: block; font-size: 18px; }
.charts { display: flex; flex-wrap: wrap; gap: 12px; }
.charts img { background: #fff; border: 1px solid var(--line); border-radius: 6px; max-width: 100%; }
.toolbar { display: flex; flex-wrap: wrap; gap: 8px; align-items: center; margin: 16px 0 8px; }
.toolbar button { border: 1px solid var(--line); background: #fff; border-radius: 14px; padding: 3px 12px;
                  cursor: pointer; }
.toolbar button.active { background: #263238; color: #fff; }
.toolbar input { padding: 4px 8px; border: 1px solid var(--line); border-radius: 4px; min-width: 240px; }
table.runs { border-collapse: collapse; width: 100%; background: #fff; }
table.runs th, table.runs td { border-bottom: 1px solid var(--line); padding: 4px 8px; text-align: left;
                               vertical-align: top; }
table.runs th { cursor: pointer; user-select: none; background: #eceff1; position: sticky; top: 0; }
table.runs th[aria-sort="ascending"]::after { content: " \\25B2"; }
table.runs th[aria-sort="descending"]::after { content: " \\25BC"; }
table.runs td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.prompt { max-width: 380px; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
td.error { max-width: 300px; overflow-wrap: anywhere; font-size: 12px; color: var(--bad); }
td.model { max-width: 170px; overflow-wrap: anywhere; font-size: 12px; }
.table-wrap { overflow-x: auto; }
.badge { display: inline-block; border-radius: 10px; padding: 0 8px; color: #fff; font-size: 12px; }
.badge.accepted { background: var(--ok); } .badge.max_rounds { background: var(--warn); }
.badge.budget { background: var(--warn); } .badge.failed { background: var(--bad); } .badge.pending { background: var(--grey); }
.badge.paused { background: #2a7ab0; } .badge.edited, .badge.human { background: #7a4fb0; }
section.run { background: #fff; border: 1px solid var(--line); border-radius: 6px; margin: 20px 0;
              padding: 12px 16px; }
section.run h2 { font-size: 16px; margin: 0 0 8px; }
.prompt-text { white-space: pre-wrap; background: #f5f5f5; padding: 8px; border-radius: 4px; }
.attempt { border-top: 1px dashed var(--line); padding-top: 8px; margin-top: 8px; }
.cols { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
.cols > div { flex: 1 1 380px; min-width: 0; }
.code { max-height: 420px; overflow: auto; border: 1px solid var(--line); border-radius: 4px; font-size: 12px; }
.code pre { margin: 0; padding: 8px; }
img.shot { max-width: 100%; max-height: 420px; border: 1px solid var(--line); border-radius: 4px;
           background: #fff; }
.decision { font-size: 13px; margin: 2px 0; }
.decision .node { font-weight: 600; }
.error { white-space: pre-wrap; color: var(--bad); font-size: 12px; max-height: 240px; overflow: auto; }
.muted { color: var(--grey); }
ul.problems { margin: 4px 0; }
[hidden] { display: none !important; }
"""

JS = """
(function () {
  const table = document.querySelector('table.runs');
  const rows = table ? Array.from(table.tBodies[0].rows) : [];
  let status = 'all', needle = '';
  function apply() {
    rows.forEach(function (row) {
      const show = (status === 'all' || row.dataset.status === status) &&
                   (!needle || row.textContent.toLowerCase().indexOf(needle) >= 0);
      row.hidden = !show;
    });
    document.querySelectorAll('section.run').forEach(function (sec) {
      sec.hidden = !(status === 'all' || sec.dataset.status === status);
    });
  }
  document.querySelectorAll('.toolbar button[data-status]').forEach(function (button) {
    button.addEventListener('click', function () {
      status = button.dataset.status;
      document.querySelectorAll('.toolbar button').forEach(function (b) { b.classList.remove('active'); });
      button.classList.add('active');
      apply();
    });
  });
  const search = document.getElementById('search');
  if (search) { search.addEventListener('input', function () { needle = search.value.toLowerCase(); apply(); }); }
  if (table) {
    Array.from(table.tHead.rows[0].cells).forEach(function (th, index) {
      th.addEventListener('click', function () {
        const asc = th.getAttribute('aria-sort') !== 'ascending';
        Array.from(table.tHead.rows[0].cells).forEach(function (c) { c.removeAttribute('aria-sort'); });
        th.setAttribute('aria-sort', asc ? 'ascending' : 'descending');
        const numeric = th.dataset.type === 'num';
        const key = function (row) {
          const cell = row.cells[index];
          const value = cell.dataset.value !== undefined ? cell.dataset.value : cell.textContent;
          return numeric ? parseFloat(value) || 0 : value.toLowerCase();
        };
        rows.sort(function (a, b) {
          const x = key(a), y = key(b);
          return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1);
        });
        rows.forEach(function (row) { table.tBodies[0].appendChild(row); });
      });
    });
  }
  const wanted = /^#status=([a-z_]+)$/.exec(window.location.hash);  // e.g. #status=failed opens filtered
  if (wanted) {
    const button = document.querySelector('.toolbar button[data-status="' + wanted[1] + '"]');
    if (button) { button.click(); }
  }
  window.addEventListener('load', function () {
    const images = Array.from(document.images);
    const broken = images.filter(function (img) { return !(img.complete && img.naturalWidth > 0); });
    const check = document.getElementById('image-check');
    check.dataset.total = String(images.length);
    check.dataset.loaded = String(images.length - broken.length);
    check.textContent = JSON.stringify({total: images.length, loaded: images.length - broken.length,
      broken: broken.map(function (img) { return img.getAttribute('src').slice(0, 200); })});
  });
})();
"""


def script_hash() -> str:
    """The CSP hash of the script, so that only this script may run in the page."""
    return "sha256-" + base64.b64encode(hashlib.sha256(JS.encode()).digest()).decode()
