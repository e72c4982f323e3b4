"""`coco report`: a static HTML report of a batch or of one run, readable from disk with no server."""

from __future__ import annotations

from pathlib import Path

from coco_agent.report.collect import ReportError, open_target, read_detail, read_row, run_dirs
from coco_agent.rundir import REPORT_FILE
from coco_agent.runs import now

__all__ = ["REPORT_FILE", "ReportError", "write_report"]


def write_report(
    target: str | Path, output: str | Path | None = None, *, embed_images: bool = False, details: int = 500
) -> Path:
    """Write the report of ``target`` (a batch folder or a run directory) to ``output``; return its path.

    By default images are linked by paths relative to the report (keep it beside the runs, e.g.
    OUT/report.html); ``embed_images`` puts them inside the file instead. The first ``details`` prompts get
    a full section (attempts, code, drafts, critiques, decisions, refinement); the table lists every prompt.
    """
    from coco_agent.report.page import Images, render_page

    found = open_target(Path(target))
    out = Path(output) if output else found.path / REPORT_FILE
    rows = [read_row(run_dir) for run_dir in run_dirs(found)]
    sections = [read_detail(row) for row in rows[:details]]
    html = render_page(found, rows, sections, Images(out, embed_images), now())
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(out)
    return out
