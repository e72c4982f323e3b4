"""Deliverables next to final.png: final.svg, the editable layered picture (``editable_svg``), and for HTML
drafts final.html, the same as an editable page (``editable_html``).

``write_deliverables(state)`` is what finalize calls: it reads the chosen draft's text (attempts/NN/
text_boxes.json, or the SVG program itself) and writes final.svg beside final.png; it never fails a run
(a problem is the record's ``why``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from coco_agent.rundir import FINAL_HTML_FILE, FINAL_SVG_FILE, REFINED_BARE_FILE


def write_deliverables(state: dict[str, Any]) -> dict[str, Any]:
    """final.svg for a run that has a final image, and final.html for an HTML draft; ``{"svg": record,
    "html": record}`` (see editable_svg.write_editable_svg, editable_html.write_editable_html)."""
    run_dir = Path(state.get("run_dir") or ".")
    final = state.get("final_path")
    target = run_dir / FINAL_SVG_FILE
    page = run_dir / FINAL_HTML_FILE
    page.unlink(missing_ok=True)  # written again below for an HTML draft
    if not final:
        target.unlink(missing_ok=True)
        return {}
    best = next((a for a in state.get("attempts") or [] if a.get("round") == state.get("best_round")), {})
    saved: dict = {}
    try:
        from coco_agent import formats
        from coco_agent.deliverables.editable_svg import write_editable_svg
        from coco_agent.runs import read_json

        saved = read_json(run_dir / best["text_boxes_path"]) if best.get("text_boxes_path") else {}
        fmt = formats.get(state.get("format") or formats.DEFAULT)
        source = None
        if fmt.name == "svg" and best.get("code_path"):
            source = (run_dir / best["code_path"]).read_text(encoding="utf-8")
        size = saved.get("size")
        record = write_editable_svg(
            target,
            run_dir / final,
            texts=saved.get("texts"),
            boxes=saved.get("boxes"),
            size=tuple(size) if isinstance(size, list) and len(size) == 2 else None,
            svg_source=source,
            title=state.get("prompt", ""),
            bare=bare_background(state, run_dir),
        )
    except Exception as exc:  # a deliverable never costs the run its result
        target.unlink(missing_ok=True)
        record = {"path": None, "why": f"{type(exc).__name__}: {str(exc)[:300]}"}
    if record.get("path") is None:
        target.unlink(missing_ok=True)
    out = {"svg": {k: v for k, v in record.items() if k != "texts"} | {"round": best.get("round")}}
    if state.get("format") == "html":
        out["html"] = _editable_page(
            page, run_dir / final, best, saved, state.get("prompt", ""), bare_background(state, run_dir)
        )
    return out


def bare_background(state: dict[str, Any], run_dir: Path) -> Path | None:
    """With layered text, the final picture without its text: the refiner's picture when the composite is final,
    the bare draft when the draft is; None otherwise (the deliverable erases the text from final.png)."""
    refinement = state.get("refinement") or {}
    mode = refinement.get("text_mode") or {}
    if mode.get("mode") != "layered" or not mode.get("bare") or mode.get("round") != state.get("best_round"):
        return None
    if refinement.get("kept"):
        composited = (refinement.get("text_layer") or {}).get("composited")
        return run_dir / REFINED_BARE_FILE if composited and (run_dir / REFINED_BARE_FILE).is_file() else None
    bare = run_dir / mode["bare"]
    return bare if bare.is_file() else None


def _editable_page(
    page: Path, final: Path, best: dict[str, Any], saved: dict, title: str, bare: Path | None
) -> dict[str, Any]:
    """final.html for an HTML draft (editable_html.write_editable_html); never fails the run."""
    try:
        from coco_agent.deliverables.editable_html import write_editable_html

        size = saved.get("size")
        record = write_editable_html(
            page,
            final,
            texts=saved.get("texts"),
            size=tuple(size) if isinstance(size, list) and len(size) == 2 else None,
            title=title,
            bare=bare,
        )
    except Exception as exc:
        record = {"path": None, "why": f"{type(exc).__name__}: {str(exc)[:300]}"}
    if record.get("path") is None:
        page.unlink(missing_ok=True)
    return {k: v for k, v in record.items() if k != "texts"} | {"round": best.get("round")}
