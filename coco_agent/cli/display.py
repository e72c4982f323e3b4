"""What the `coco` commands show on a terminal: errors and warnings, a run's progress and summary, the render
line, the sandbox status table, the benchmark tables, the score lines.

Every text coco did not write itself (an error, a model's answer, a file name, a path) goes through
``coco_agent.safe_text`` before rich or the terminal sees it. rich is imported where it is used, so `coco
--help` does without it. The live run display and its summary table are ``coco_agent/progress.py`` (the
library's runner shields them), the batch's ``coco_agent/batch/progress.py``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from coco_agent.cli.exit_codes import ExitCode, for_status
from coco_agent.safe_text import json_text, markup_text, plain_text, safe_console, terminal_text

INTERRUPTED_RUN = "interrupted. A run continues with `coco resume RUN_DIR`."
INTERRUPTED_BATCH = "interrupted: finished prompts are kept; rerun the same command to continue"
PROXY_TITLE = "LongText-Bench text score, local-OCR proxy (not the official number)"
LONGTEXT_COLUMNS = {  # table heading -> key of the bench figures
    "round 1": "first_draft_text_score",
    "draft": "draft_text_score",
    "best draft": "best_draft_text_score",
    "final": "final_text_score",
}


def fail(message: object, code: ExitCode = ExitCode.USAGE) -> ExitCode:
    """Print ``error: MESSAGE`` on stderr (as data) and return ``code``."""
    print(f"error: {terminal_text(message)}", file=sys.stderr)
    return code


def warn(message: object) -> None:
    """Print ``warning: MESSAGE`` on stderr (as data)."""
    print(f"warning: {terminal_text(message)}", file=sys.stderr)


def sandbox_progress(message: str) -> None:
    """A sandbox's progress message (starting, building the image) on stderr, as data."""
    from coco_agent.sandbox import print_progress

    print_progress(message)


def stderr_console() -> Any:
    """The stderr console (markup for coco's own words, escaped text for the rest)."""
    return safe_console(stderr=True)


# ---------------------------------------------------------------------------------------------- runs


def with_progress(quiet: bool, run: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
    """``run(on_update)`` with a live progress display on stderr (none when ``quiet``, i.e. --json)."""
    if quiet:
        return run(None)
    from coco_agent.progress import RunProgress

    with RunProgress() as progress:
        return run(progress.update)


def show_result(result: dict[str, Any], as_json: bool) -> ExitCode:
    """result.json on stdout (--json) or the closing summary table; the exit code of its status."""
    code = for_status(result.get("status"))
    if as_json:
        print(json_text(result, indent=2))
        return code
    if result.get("status") == "paused":
        review_waiting(result.get("review") or {}, (result.get("paths") or {}).get("run_dir", ""))
        return code
    from coco_agent.progress import print_summary

    print_summary(result)
    return code


# ------------------------------------------------------------------------------------------- reviews


def review_waiting(review: dict[str, Any], run_dir: str, *, image: bool = False) -> None:
    """What a paused run waits for: the point, the draft (inline when the terminal shows images and ``image``),
    the critique, the planned refinement or the refined image, and how to answer. Paths are never shortened."""
    from pathlib import Path

    out = safe_console(file=sys.stdout)
    point = review.get("point")
    title = "the draft, before refinement" if point == "draft" else "the refined image, before it counts"
    out.print(f"[bold yellow]waiting for review[/]: {markup_text(title)}", highlight=False)
    rows: list[tuple[str, str]] = [("run", run_dir)]
    rows.append(("round", f"{review.get('round')} (draft of round {review.get('draft_round')})"))
    for key in ("draft", "code", "refined", "final"):
        if review.get(key):
            rows.append((key, str(Path(run_dir) / review[key])))
    verdict = review.get("verdict") or {}
    if verdict:
        problems = "; ".join(str(p) for p in verdict.get("problems") or [])
        critique = f"score {verdict.get('score')}: {verdict.get('summary', '')}"
        rows.append(("critique", critique + (f" ({problems})" if problems else "")))
    elif point == "draft":
        rows.append(("critique", "none (no critic)"))
    decision = review.get("decision") or {}
    if decision.get("why"):
        rows.append(("agent", f"{decision.get('status')}: {decision['why']}"))
    plan = review.get("planned_refinement") or review.get("refinement") or {}
    if plan:
        rows.append(("refinement", refinement_line(plan)))
    if review.get("error"):
        rows.append(("last answer", f"refused: {review['error']}"))
    for key, value in rows:
        out.print(plain_text(f"  {key:<11} {value}"), soft_wrap=True, highlight=False)
    if image:
        from coco_agent.cli.inline_image import show_inline

        for key in ("draft", "final") if point == "refine" else ("draft",):
            if review.get(key):
                show_inline(Path(run_dir) / review[key])
    cmd = f"coco review {run_dir}"
    answer = f'answer: {cmd} accept | {cmd} reject "what is wrong" | {cmd} edit'
    out.print(plain_text(answer), soft_wrap=True, highlight=False)


def refinement_line(plan: dict[str, Any]) -> str:
    """One line for a planned refinement (draft review) or the refinement record (final review)."""
    strength = plan.get("strength") or {}
    parts = [f"refiner {plan.get('refiner')}"]
    if strength.get("level"):
        parts.append(f"level {strength.get('level')} ({strength.get('why', '')})")
    for key in ("what", "why"):
        if plan.get(key):
            parts.append(str(plan[key]))
    if "kept" in plan:
        parts.append("refined image kept" if plan["kept"] else "the draft stays final")
    return "; ".join(parts)


def runs_waiting(paths: list[Any]) -> None:
    """The runs of a batch that wait for review, and how to answer them."""
    if not paths:
        return
    err = stderr_console()
    err.print(f"[yellow]{len(paths)} run(s) wait for review[/]:", highlight=False)
    for path in paths:
        err.print(plain_text(f"  coco review {path}"), soft_wrap=True, highlight=False)


def replay_report(report: dict[str, Any], as_json: bool) -> None:
    """`coco replay`'s outcome: its JSON report, or a line and each difference (as data, never markup)."""
    if as_json:
        print(json_text(report, indent=2))
        return
    from coco_agent.safe_text import terminal_text

    calls = f"{report['calls_replayed']} recorded answer(s) played back, 0 model calls"
    if report["identical"]:
        print(terminal_text(f"replay identical: {calls}; {report['replay']}"))
        return
    print(terminal_text(f"replay differs in {len(report['differences'])} place(s) ({calls}):"))
    for line in report["differences"]:
        print("  " + terminal_text(line))


def interrupted_batch() -> ExitCode:
    """Ctrl-C during a batch: what is kept and how to go on."""
    print(INTERRUPTED_BATCH, file=sys.stderr)
    return ExitCode.INTERRUPTED


def batch_budget_stopped(pending: int, reason: str) -> None:
    print(
        terminal_text(
            f"error: {pending} prompt(s) were not started: {reason}; rerun the same command with a larger "
            "--batch-budget-usd / --batch-budget-tokens / --batch-deadline to continue them"
        ),
        file=sys.stderr,
    )


def batch_incomplete(pending: int) -> None:
    print(
        f"error: {pending} prompt(s) have no outcome (pending); rerun the same command to continue them",
        file=sys.stderr,
    )


# -------------------------------------------------------------------------------------------- render


def render_report(report: dict[str, Any], code: ExitCode, as_json: bool) -> ExitCode:
    """`coco render`'s outcome: its JSON record, or one line on stderr (plus the program's stderr tail)."""
    if as_json:
        print(json_text(report))
        return code
    err = stderr_console()
    if code == ExitCode.OK:
        err.print(
            f"[green]rendered[/green] {markup_text(report['output'])} ({report['width']}x{report['height']}, "
            f"{report['format']}) in {report['seconds']:.2f} s [dim]\\[{report['sandbox']} sandbox][/dim]",
            highlight=False,
        )
    else:
        err.print(
            f"[red]{markup_text(report['status'])}[/red]: {markup_text(report['error'])}", highlight=False
        )
        if report.get("stderr_tail") and report["status"] != "error":
            err.print(plain_text(report["stderr_tail"]), highlight=False)
    return code


# ------------------------------------------------------------------------------------------- sandbox


def sandbox_error(what: str, exc: object) -> None:
    """``WHAT: reason`` in red on stderr (the reason as data)."""
    stderr_console().print(f"[red]{what}[/red] {markup_text(exc)}", highlight=False)


def sandbox_ready(tag: str, seconds: float) -> None:
    stderr_console().print(f"[green]ready[/green] {tag} ({seconds:.1f} s)")


def sandbox_status(status: dict[str, Any]) -> None:
    """The engine, server, image and debootstrap rows of `coco sandbox status`."""
    from rich.table import Table

    table = Table(show_header=False, box=None)
    table.add_row(
        "engine",
        "[green]reachable[/green]"
        if status["engine"]
        else f"[red]unreachable[/red] {markup_text(status['engine_error'])}",
    )
    if status["engine"]:
        table.add_row(
            "server",
            f"Docker {status['server_version']}, runtime {status['runtime']}, cgroup v{status['cgroup_version']}",
        )
    image = status["image"]
    if status["present"]:
        table.add_row(
            "image", f"[green]{image}[/green] {status['size_mb']} MB, created {status['created'][:19]}"
        )
    else:
        table.add_row("image", f"[yellow]{image} missing[/yellow]: run `coco sandbox build`")
    table.add_row(
        "debootstrap", status["debootstrap"] or "[yellow]missing[/yellow] (apt-get install debootstrap)"
    )
    safe_console(file=sys.stdout).print(table)


# --------------------------------------------------------------------------------------- benchmarks


def bench_sandbox(figures: dict[str, Any]) -> None:
    """`coco bench sandbox`'s table: p50/p95/mean per path, the ratios, failures and fidelity."""
    from rich.table import Table

    table = Table(title=f"seconds per draft over {figures['compared']} programs every path rendered")
    for column in ("path", "p50", "p95", "mean"):
        table.add_column(column)
    for path, stats in figures["seconds"].items():
        table.add_row(
            path, *(f"{stats[q]:.3f}" if stats[q] is not None else "-" for q in ("p50", "p95", "mean"))
        )
    out = safe_console(file=sys.stdout)
    out.print(table)
    if figures["p50_ratio"] is not None or figures["p50_docker_run_ratio"] is not None:
        out.print(
            f"pool/bare p50 {figures['p50_ratio']}  p95 {figures['p95_ratio']}   "
            f"docker-run/pool p50 {figures['p50_docker_run_ratio']}  p95 {figures['p95_docker_run_ratio']}"
        )
    if "p50_gvisor_ratio" in figures:
        out.print(
            f"gvisor-pool/bare p50 {figures['p50_gvisor_ratio']}  p95 {figures['p95_gvisor_ratio']}   "
            f"gvisor-pool/pool p50 {figures['p50_gvisor_pool_ratio']}"
        )
    if "p50_bwrap_warm_ratio" in figures:
        out.print(
            f"bwrap-warm/bare-host p50 {figures['p50_bwrap_warm_ratio']}  p95 {figures['p95_bwrap_warm_ratio']}   "
            f"bwrap-job/bwrap-warm p50 {figures['p50_bwrap_job_ratio']}  p95 {figures['p95_bwrap_job_ratio']}"
        )
    out.print(f"rendered {figures['rendered']}/{figures['programs']}, failed {figures['failed']}")
    for key, name in (
        ("fidelity", "pool"),
        ("fidelity_gvisor_pool", "gvisor_pool"),
        ("fidelity_bwrap_warm", "bwrap_warm"),
    ):
        fid = figures.get(key)
        if fid:
            out.print(
                f"fidelity {name}: {fid['matched']}/{fid['plain_ok']} match the bare render ({fid['match_rate']})"
            )
            for item in fid["mismatches"]:
                line = f"  {item['program']}: {item['why']} {item.get('mean_diff', '')}"
                out.print(plain_text(line), highlight=False)
    for item in figures["failures"]:
        line = f"  failed {item['path']} {item['program']}: {item['status']} {item['error'][-160:]}"
        out.print(plain_text(line), highlight=False)


def bench_longtext(figures: dict[str, Any]) -> None:
    """The LongText-Bench table: overall, then by category and by length. Columns: round 1's draft (before any
    critique), the chosen draft, the best-reading draft of all rounds, and the final."""
    from rich.table import Table

    from coco_agent.rundir import RESULT_FILE

    unit = "characters" if figures["lang"] == "zh" else "words"
    table = Table(title=markup_text(f"{PROXY_TITLE} [{figures['lang']}]"), title_justify="left")
    for name, justify in (("group", "left"), ("prompts", "right"), (unit, "right")):
        table.add_column(name, justify=justify)
    for name in LONGTEXT_COLUMNS:
        table.add_column(name, justify="right")

    def row(name: str, part: dict[str, Any], end_section: bool = False) -> None:
        cells = [
            f"{part[key]:.3f}" if part.get(key) is not None else "-" for key in LONGTEXT_COLUMNS.values()
        ]
        table.add_row(markup_text(name), str(part["n"]), str(part["units"]), *cells, end_section=end_section)

    row("all", figures, end_section=True)
    categories = list(figures["by_category"].items())
    for i, (name, part) in enumerate(categories):
        row(f"category {name}", part, end_section=i == len(categories) - 1)
    for name, part in figures["by_length"].items():
        row(f"length {name}", part)
    console = safe_console()
    console.print(table)
    console.print(
        plain_text(
            f"OCR: {figures['ocr']}. {figures['proxy']}. Statuses: {figures['statuses']}. "
            "round 1: the first draft, before any critique; draft: the chosen one (what the refiner got); "
            "best draft: the best-reading draft of any round. "
            f"Per prompt: {figures['out']}/<id>/{RESULT_FILE} (scores, text_scores); coco report {figures['out']}"
        ),
        soft_wrap=True,
        highlight=False,
    )


# -------------------------------------------------------------------------------------------- scores


def score_lines(scores: dict[str, Any]) -> str:
    """A few human lines for the scores of one image (`coco score`)."""
    text, clip = scores["text"], scores["clip"]
    lines = [f"image: {scores['image']}"]
    if "score" in text:
        unit = "characters" if text["mode"] == "zh" else "words"
        lines.append(
            f"text accuracy: {text['score']:.3f}  ({text['matched']}/{text['total']} {unit}; "
            f"OCR as read, before word recovery: {text['raw_score']:.3f})"
        )
        lines.append(f"  {text['proxy']}; engine {text['engine']}, {text['seconds']:.2f} s")
        lines.append(f"  expected ({scores['expected_source']}): {' | '.join(scores['expected_text'])}")
        if text["missing"]:
            lines.append(f"  missing: {' '.join(text['missing'])}")
    else:
        lines.append(f"text accuracy: unavailable ({text['reason']})")
    if "score" in clip:
        lines.append(f"CLIP score: {clip['score']:.4f} (cosine; CLIPScore {max(clip['score'], 0) * 100:.1f})")
        lines.append(f"  model {clip['model']}, {clip['seconds']:.2f} s")
    else:
        lines.append(f"CLIP score: unavailable ({clip['reason']})")
    return "\n".join(lines)
