"""Assemble the report's HTML: header and aggregates, charts, the summary table, one section per prompt.

Everything that came from a prompt or a model is escaped; a Content-Security-Policy lets only the page's own
script run, so a hostile prompt or program cannot script the report.
"""

from __future__ import annotations

import base64
import json
import os
import time
import urllib.parse
from collections import Counter
from collections.abc import Sequence
from html import escape
from pathlib import Path
from typing import Any

import pygments
from pygments.formatters import HtmlFormatter
from pygments.lexer import Lexer
from pygments.lexers import get_lexer_by_name

from coco_agent import formats
from coco_agent.batch.summary import percentile
from coco_agent.report import charts
from coco_agent.report.assets import CSS, JS, script_hash
from coco_agent.report.collect import Attempt, RunDetail, RunRow, Target
from coco_agent.sandbox.base import SandboxLimits
from coco_agent.sandbox.png import ImageRejected, clean_png, read_bounded, walk_png

STATUS_ORDER = ("accepted", "max_rounds", "budget", "failed", "paused", "pending")
_FORMATTER = HtmlFormatter(cssclass="hl", wrapcode=True)
# Programs are untrusted text and pygments' lexers are quadratic on some of it (XmlLexer on a run of '&' or of
# '<!--', PythonLexer on blank lines that hold a space): longer programs, and any the lexer is still busy with
# after HIGHLIGHT_CPU_S, are shown as plain text.
HIGHLIGHT_MAX_CHARS = 64 * 1024
HIGHLIGHT_CPU_S = 0.25


class Images:
    """Image sources: a path relative to the report (the default) or a data: URI (``embed``).

    A run's PNG files are checked with the host's PNG decoder and the sandbox's limits first: they may come from
    an older run that stored drafts as sent, or have been replaced. Embedded images are the pixels the host
    decoded, re-encoded. A file is linked only when its chunks hold the image alone (no text, no profile, no APNG
    animation that Chromium would show instead of the default image, nothing after IEND); else its re-encoded
    pixels are embedded instead. A file the check refuses is not shown: the page names the reason.
    """

    def __init__(self, report: Path, embed: bool, limits: SandboxLimits | None = None) -> None:
        self.base = report.resolve().parent
        self.embed = embed
        self.limits = limits or SandboxLimits()
        self._seen: dict[Path, str | ImageRejected] = {}  # drafts show twice (round, and before/after)

    def src(self, path: Path) -> str:
        """The img src of a run's PNG file. Raises ImageRejected with the reason."""
        key = path.resolve()
        if key not in self._seen:
            try:
                self._seen[key] = self._src(key)
            except ImageRejected as exc:
                self._seen[key] = exc
        found = self._seen[key]
        if isinstance(found, ImageRejected):
            raise found
        return found

    def _src(self, path: Path) -> str:
        max_bytes, max_pixels = self.limits.max_png_bytes, self.limits.max_pixels
        data = read_bounded(path, max_bytes)
        if not self.embed:
            layout = walk_png(data, max_bytes)
            if layout.clean and layout.width * layout.height <= max_pixels:
                rel = os.path.relpath(path.resolve(), self.base)
                return urllib.parse.quote(Path(rel).as_posix())
        return self.data(clean_png(data, max_pixels, max_bytes).png)

    def img(self, path: Path, alt: str) -> str:
        """An <img class='shot'> of a run's PNG file, or a note saying why it is not shown."""
        try:
            src = self.src(path)
        except ImageRejected as exc:
            return f"<p class='muted'>{escape(alt)}: image not shown ({escape(str(exc))})</p>"
        return f"<img class='shot' alt='{escape(alt)}' src='{escape(src)}'>"

    @staticmethod
    def data(png: bytes) -> str:
        return "data:image/png;base64," + base64.b64encode(png).decode()


def render_page(
    target: Target, rows: Sequence[RunRow], details: Sequence[RunDetail], images: Images, generated: str
) -> str:
    """The whole page as one string."""
    title = f"coco report: {target.path.name or target.path}"
    csp = (
        "default-src 'none'; img-src 'self' data: file:; style-src 'unsafe-inline'; "
        f"script-src '{script_hash()}'"
    )
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title>",
        f"<style>{CSS}{_FORMATTER.get_style_defs('.hl')}</style>",
        "</head><body>",
        _header(target, title, generated),
        "<main>",
        _stats(target, rows),
        _charts(rows, images),
        _table(rows, {d.row.id for d in details}),
        _details_note(len(details), len(rows)),
        *(_section(detail, images) for detail in details),
        '<pre id="image-check" hidden></pre>',
        "</main>",
        f"<script>{JS}</script>",
        "</body></html>",
    ]
    return "\n".join(parts)


def _header(target: Target, title: str, generated: str) -> str:
    meta = [f"{target.kind} {escape(str(target.path.resolve()))}", f"generated {escape(generated)}"]
    manifest = target.manifest or {}
    if manifest.get("batch_id"):
        meta.append(f"batch {escape(str(manifest['batch_id']))}")
    settings = manifest.get("settings") or {}
    if settings:
        keys = ("llm", "vlm", "refiner", "max_rounds", "sandbox")
        meta.append(", ".join(f"{k} {escape(str(settings.get(k)))}" for k in keys))
    return f"<header><h1>{escape(title)}</h1><div class='meta'>{' · '.join(meta)}</div></header>"


def _stats(target: Target, rows: Sequence[RunRow]) -> str:
    counts = Counter(row.status for row in rows)
    finished = [row for row in rows if row.status != "pending"]
    accepted = counts["accepted"] / len(finished) if finished else None
    mean_rounds = sum(r.rounds for r in finished) / len(finished) if finished else None
    seconds = [r.seconds for r in finished]
    items = [
        ("prompts", str(len(rows))),
        ("accepted", f"{counts['accepted']}" + (f" ({100 * accepted:.0f}%)" if accepted is not None else "")),
        ("max_rounds", str(counts["max_rounds"])),
        ("failed", str(counts["failed"])),
        ("mean rounds", f"{mean_rounds:.2f}" if mean_rounds is not None else "-"),
        ("p50 / p95 s", f"{percentile(seconds, 50) or 0:.1f} / {percentile(seconds, 95) or 0:.1f}"),
    ]
    if counts["budget"]:
        items.append(("budget", str(counts["budget"])))
    if counts["pending"]:
        items.append(("pending", str(counts["pending"])))
    items += _cost_stats(rows)
    rate = (target.summary or {}).get("prompts_per_minute")
    if rate:
        items.append(("prompts/min", str(rate)))
    for name, value in ((target.summary or {}).get("scores") or {}).items():
        items.append((f"score {name}", str(value)))
    cells = "".join(f"<div class='stat'>{escape(k)}<b>{escape(v)}</b></div>" for k, v in items)
    return f"<div class='stats'>{cells}</div>"


def _cost_stats(rows: Sequence[RunRow]) -> list[tuple[str, str]]:
    """Tokens and dollars of every run together (the ledger's totals); "price unknown" when any run's were."""
    usages = [row.usage for row in rows if row.usage and row.usage.get("calls")]
    if not usages:
        return []
    tokens = sum(int(u.get("total_tokens") or 0) for u in usages)
    unknown = any(u.get("usd") is None for u in usages)
    usd = sum(float(u.get("usd_priced") or 0) for u in usages)
    dollars = "price unknown" + (f" (${usd:.4f} priced)" if usd else "") if unknown else f"${usd:.4f}"
    return [
        ("model calls", str(sum(int(u.get("calls") or 0) for u in usages))),
        ("tokens", f"{tokens:,}"),
        ("cost", dollars),
    ]


def _cost_cells(row: RunRow) -> list[str]:
    usage = row.usage or {}
    tokens = usage.get("total_tokens") if usage.get("calls") else None
    usd = usage.get("usd")
    shown = f"${usd:.4f}" if isinstance(usd, int | float) else ("price unknown" if usage.get("calls") else "")
    return [
        f"<td class='num' data-value='{escape(str(tokens or 0))}'>{'' if tokens is None else f'{tokens:,}'}</td>",
        f"<td class='num' data-value='{escape(str(usd if usd is not None else ''))}'>{escape(shown)}</td>",
    ]


def _charts(rows: Sequence[RunRow], images: Images) -> str:
    figures = [
        ("statuses", charts.status_chart(rows)),
        ("rounds", charts.rounds_chart(rows)),
        ("seconds per node", charts.node_seconds_chart(rows)),
    ]
    tags = "".join(f"<img alt='{escape(name)}' src='{images.data(png)}'>" for name, png in figures)
    return f"<div class='charts'>{tags}</div>"


def _table(rows: Sequence[RunRow], detailed: set[str]) -> str:
    counts = Counter(row.status for row in rows)
    buttons = [f"<button class='active' data-status='all'>all {len(rows)}</button>"]
    buttons += [f"<button data-status='{s}'>{s} {counts[s]}</button>" for s in STATUS_ORDER if counts[s]]
    toolbar = (
        "<div class='toolbar'>"
        + "".join(buttons)
        + "<input id='search' type='search' placeholder='filter by text (id, prompt, error)'></div>"
    )
    score_names = sorted(  # numbers only (a list such as attempt_text_scores stays in result.json)
        {name for row in rows for name, value in (row.scores or {}).items() if _is_number(value)}
    )
    head = [("id", "text"), ("status", "text"), ("rounds", "num"), ("seconds", "num")]
    head += [("tokens", "num"), ("cost", "num")]
    head += [(f"score {name}", "num") for name in score_names]
    head += [
        ("refined", "text"),
        ("coder", "text"),
        ("critic", "text"),
        ("prompt", "text"),
        ("error", "text"),
    ]
    thead = "".join(f"<th data-type='{kind}'>{escape(name)}</th>" for name, kind in head)
    body = [_table_row(row, score_names, row.id in detailed) for row in rows]
    table = f"<table class='runs'><thead><tr>{thead}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    return f"{toolbar}<div class='table-wrap'>{table}</div>"


def _table_row(row: RunRow, score_names: list[str], linked: bool) -> str:
    ident = escape(row.id)
    name = f"<a href='#run-{ident}'>{ident}</a>" if linked else ident
    cells = [
        f"<td>{name}</td>",
        f"<td data-value='{escape(row.status)}'>{_badge(row.status)}{_edited(row)}</td>",
        f"<td class='num'>{row.rounds}</td>",
        f"<td class='num'>{row.seconds:.1f}</td>",
        *_cost_cells(row),
    ]
    for score in score_names:
        value = (row.scores or {}).get(score)
        shown = f"{value:.3f}" if isinstance(value, int | float) else ""
        cells.append(f"<td class='num' data-value='{escape(str(value))}'>{shown}</td>")
    refined = {True: "yes", False: "no", None: ""}[row.refinement_kept]
    cells += [
        f"<td>{refined}</td>",
        f"<td class='model'>{escape(row.coder or '')}</td>",
        f"<td class='model'>{escape(row.critic or '')}</td>",
        f"<td class='prompt' title='{escape(row.prompt[:1000])}'>{escape(row.prompt[:200])}</td>",
        f"<td class='error'>{escape(row.error[:200])}</td>",
    ]
    return f"<tr data-status='{escape(row.status)}'>{''.join(cells)}</tr>"


def _details_note(shown: int, total: int) -> str:
    if shown >= total:
        return ""
    return (
        f"<p class='muted'>Details below for the first {shown} of {total} prompts "
        "(the table lists all; raise --details to show more).</p>"
    )


def _section(detail: RunDetail, images: Images) -> str:
    row = detail.row
    parts = [
        f"<section class='run' id='run-{escape(row.id)}' data-status='{escape(row.status)}'>",
        f"<h2>{escape(row.id)} {_badge(row.status)}{_edited(row)} <span class='muted'>{row.rounds} round(s), "
        f"{row.seconds:.1f} s</span></h2>",
        f"<div class='prompt-text'>{escape(row.prompt)}</div>",
    ]
    if detail.texts:
        parts.append(
            "<p class='muted'>must show: " + "; ".join(f"“{escape(t)}”" for t in detail.texts) + "</p>"
        )
    if row.error:
        parts.append(f"<div class='error'>{escape(row.error)}</div>")
    for attempt in detail.attempts:
        parts.append(_attempt(attempt, images))
    parts.append(_refinement(detail, images))
    parts.append("</section>")
    return "\n".join(parts)


def _attempt(attempt: Attempt, images: Images) -> str:
    status = escape(str(attempt.status or "?"))
    left = []
    if attempt.code is not None:
        left.append(f"<div class='code'>{code_html(attempt.code, attempt.code_name or '')}</div>")
    else:
        left.append("<p class='muted'>no program in the model's answer</p>")
    if attempt.error:
        left.append(f"<div class='error'>{escape(attempt.error)}</div>")
    right = []
    if attempt.draft is not None:
        right.append(images.img(attempt.draft, f"draft, round {attempt.round}"))
    else:
        right.append("<p class='muted'>no draft</p>")
    if attempt.critique:
        right.append(_critique(attempt.critique))
    right.append("".join(_decision(d) for d in attempt.decisions))
    by = " <span class='badge human'>written by a person</span>" if attempt.source == "human" else ""
    return (
        f"<div class='attempt'><h3>Round {attempt.round}{by} <span class='muted'>({status})</span></h3>"
        f"<div class='cols'><div>{''.join(left)}</div><div>{''.join(right)}</div></div></div>"
    )


def code_html(code: str, name: str) -> str:
    """The program highlighted with its format's lexer (by its file name; Python when unknown), or as plain text
    when it is longer than HIGHLIGHT_MAX_CHARS or the lexer needs more than HIGHLIGHT_CPU_S: every character is
    shown either way."""
    record = formats.by_code_file(name)
    lexer = get_lexer_by_name(record.lexer if record else "python")
    tokens = _tokens(lexer, code, HIGHLIGHT_CPU_S) if len(code) <= HIGHLIGHT_MAX_CHARS else None
    if tokens is not None:
        return pygments.format(tokens, _FORMATTER)
    return f'<div class="hl"><pre><code>{escape(code)}</code></pre></div>'


def _tokens(lexer: Lexer, code: str, cpu_s: float) -> list | None:
    """The lexer's tokens, or None once it has spent ``cpu_s`` of CPU (checked every 64 tokens)."""
    deadline = time.process_time() + cpu_s
    tokens = []
    for count, token in enumerate(lexer.get_tokens(code)):
        tokens.append(token)
        if count % 64 == 0 and time.process_time() > deadline:
            return None
    return tokens


def _critique(critique: dict[str, Any]) -> str:
    match = critique.get("match")
    verdict = {True: "match", False: "mismatch", None: "no verdict"}.get(match, str(match))
    problems = "".join(f"<li>{escape(str(p))}</li>" for p in critique.get("problems") or [])
    head = (
        f"<p><b>critic</b> ({escape(str(critique.get('model', '')))}): {escape(verdict)}, score "
        f"{escape(str(critique.get('score')))}. {escape(str(critique.get('summary') or ''))}</p>"
    )
    notes = critique.get("notes") or []
    tail = f"<p class='muted'>{escape('; '.join(map(str, notes)))}</p>" if notes else ""
    return head + (f"<ul class='problems'>{problems}</ul>" if problems else "") + tail


def _decision(record: dict[str, Any]) -> str:
    decision = record.get("decision")
    arrow = f" → <b>{escape(str(decision))}</b>" if decision else ""
    seconds = record.get("seconds")
    timing = f" <span class='muted'>{seconds:.2f}s</span>" if isinstance(seconds, int | float) else ""
    model = f" <span class='muted'>[{escape(str(record['model']))}]</span>" if record.get("model") else ""
    why = escape(str(record.get("why") or ""))
    return (
        f"<div class='decision'><span class='node'>{escape(str(record.get('node')))}</span>{arrow}"
        f"{timing}{model} {why}</div>"
    )


def _refinement(detail: RunDetail, images: Images) -> str:
    record = detail.refinement or {}
    parts = ["<div class='attempt'><h3>Refinement and final</h3>"]
    if record:
        shown = {k: v for k, v in record.items() if k not in ("draft", "refined")}
        parts.append(f"<p>{escape(json.dumps(shown, ensure_ascii=False, default=str)[:2000])}</p>")
    pictures = []
    if detail.draft is not None:
        pictures.append(("before (draft)", detail.draft))
    if detail.refined is not None:
        pictures.append(("after (refined)", detail.refined))
    if detail.final is not None:
        pictures.append(("final", detail.final))
    if pictures:
        cells = "".join(
            f"<div><p class='muted'>{escape(label)}</p>{images.img(path, label)}</div>"
            for label, path in pictures
        )
        parts.append(f"<div class='cols'>{cells}</div>")
    else:
        parts.append("<p class='muted'>no final image</p>")
    parts.append("</div>")
    return "".join(parts)


def _edited(row: RunRow) -> str:
    """The mark of a run a person edited (`coco edit`)."""
    if not row.edited:
        return ""
    return f" <span class='badge edited' title='{row.edited} edit(s) by a person'>edited</span>"


def _badge(status: str) -> str:
    return f"<span class='badge {escape(status)}'>{escape(status)}</span>"


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
