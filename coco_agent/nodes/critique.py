"""critique: the vision model sees the prompt, the code and the draft image, and returns a structured verdict.

Three shapes of the same node: one draft (the default); ``--critique split`` (a visual critic judges the image
without the code, then a code critic maps each problem it listed to lines of the program, and the writer gets
both); and a shortlist of candidates (``--candidates N``), shown side by side and labelled in one image, where
the critic names the best one (a label that does not exist falls back to the ranking's first).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langgraph.runtime import Runtime

from coco_agent import formats, prompts
from coco_agent.context import RunContext
from coco_agent.ledger.gate import gate
from coco_agent.ledger.meter import Site, invoke, invoke_structured
from coco_agent.ledger.prices import load_prices
from coco_agent.models import describe_model, model_for
from coco_agent.models.content import message_text, png_block, png_file_block
from coco_agent.routing import after_critique, bullet, retry_or_stop
from coco_agent.rundir import CANDIDATES_IMAGE, CODE_CRITIQUE_FILE, CRITIQUE_FILE, attempt_dir
from coco_agent.runs import rel, write_json
from coco_agent.sandbox.base import SandboxLimits
from coco_agent.sandbox.png import ImageRejected
from coco_agent.trace import TRACE_KEY, traced
from coco_agent.verdict import CodeMap, Verdict, parse_code_map, parse_verdict, verdict_record

LABELS = "ABCDEFGHIJKLMNOP"


def critic_messages(
    state: dict[str, Any],
    attempt: dict[str, Any],
    limits: SandboxLimits | None = None,
    *,
    visual: bool = False,
) -> list:
    """Exactly what the critic sees: its rules, the request, the program (not for the visual critic of
    ``--critique split``), and the draft as an image block.

    The draft is read from disk through the host's checked decoder, with the sandbox's limits, and re-encoded
    (it may have been replaced since it was checked, or come from an older run): the critic sees the pixels
    the checks saw, never a file's text chunks or an APNG's other frames. Raises ImageRejected with the reason.
    """
    run_dir = Path(state["run_dir"])
    fmt = state["format"]
    if visual:
        text = prompts.render("critic_visual", prompt=state["prompt"])
    else:
        code = (run_dir / attempt["code_path"]).read_text(encoding="utf-8")
        text = prompts.render(
            "critic_task", prompt=state["prompt"], format=fmt, fence=formats.get(fmt).fence, code=code
        )
    image = png_file_block(run_dir / attempt["draft_path"], limits)
    return [
        SystemMessage(prompts.render("critic_system")),
        HumanMessage(content=[{"type": "text", "text": text}, image]),
    ]


def choice_messages(state: dict[str, Any], montage_png: bytes, labels: list[str]) -> list:
    """The shortlist, side by side in one image, each labelled: the critic names the best and judges it."""
    text = prompts.render(
        "critic_choose", prompt=state["prompt"], labels=", ".join(labels), count=len(labels)
    )
    return [
        SystemMessage(prompts.render("critic_system")),
        HumanMessage(content=[{"type": "text", "text": text}, png_block(montage_png)]),
    ]


def ask_critic(model: Any, messages: list, site: Site) -> tuple[dict[str, Any], list[str], list[dict]]:
    """Structured output first, then the answer's text, then one repair try. Never raises. Returns the verdict,
    notes and the ledger records of the calls made (sequence 0, 1, 2 of this node run)."""
    notes: list[str] = []
    records: list[dict] = []
    raw_text = ""
    try:
        out, record = invoke_structured(site, model, Verdict, messages, seq=0)
        records.append(record)
        if isinstance(out.get("parsed"), Verdict):
            return verdict_record(out["parsed"]), notes, records
        raw_text = message_text(out.get("raw"))
        notes.append("structured output gave no verdict")
    except NotImplementedError:
        notes.append("model has no structured output; reading JSON from text")
    except Exception as exc:
        notes.append(f"structured call failed: {type(exc).__name__}: {str(exc)[:200]}")
    try:
        if not raw_text:
            answer, record = invoke(site, model, messages, seq=1)
            records.append(record)
            raw_text = message_text(answer)
        return verdict_record(parse_verdict(raw_text)), notes, records
    except Exception as exc:
        notes.append(f"unparsable verdict: {str(exc)[:200]}")
        error = str(exc)[:200]
    try:  # the one repair try
        repair = HumanMessage(prompts.render("critic_repair", error=error))
        answer, record = invoke(site, model, [*messages, AIMessage(raw_text or "(no answer)"), repair], seq=2)
        records.append(record)
        verdict = verdict_record(parse_verdict(message_text(answer)), source="critic")
        return verdict, [*notes, "repaired"], records
    except Exception as exc:
        notes.append(f"repair failed: {str(exc)[:200]}")
    summary = "critic answer unreadable after one repair try"
    verdict = {"match": None, "score": None, "problems": [], "summary": summary, "source": "unparsable"}
    return verdict, notes, records


def ask_code_critic(
    model: Any, state: dict[str, Any], attempt: dict[str, Any], problems: list[str], site: Site
) -> tuple[list[dict[str, Any]] | None, list[str], list[dict]]:
    """``--critique split``, second step: the program with line numbers and the visual critic's problems; each
    problem mapped to lines. Structured output, else JSON from the text; None when unreadable (never raises)."""
    code = (Path(state["run_dir"]) / attempt["code_path"]).read_text(encoding="utf-8")
    numbered = "\n".join(f"{i:4d}  {line}" for i, line in enumerate(code.splitlines(), start=1))
    text = prompts.render("critic_code", prompt=state["prompt"], code=numbered, problems=bullet(problems))
    messages = [SystemMessage(prompts.render("critic_code_system")), HumanMessage(text)]
    notes: list[str] = []
    records: list[dict] = []
    try:
        out, record = invoke_structured(site, model, CodeMap, messages, seq=10)
        records.append(record)
        if isinstance(out.get("parsed"), CodeMap):
            return [f.model_dump() for f in out["parsed"].fixes], notes, records
        raw = message_text(out.get("raw"))
        return [f.model_dump() for f in parse_code_map(raw).fixes], notes, records
    except NotImplementedError:
        notes.append("code critic: no structured output; reading JSON from text")
    except Exception as exc:
        notes.append(f"code critic: {type(exc).__name__}: {str(exc)[:200]}")
        return None, notes, records
    try:
        answer, record = invoke(site, model, messages, seq=11)
        records.append(record)
        return [f.model_dump() for f in parse_code_map(message_text(answer)).fixes], notes, records
    except Exception as exc:
        notes.append(f"code critic: {type(exc).__name__}: {str(exc)[:200]}")
        return None, notes, records


@traced("critique")
def critique(state: dict[str, Any], runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Judge the draft (or choose among the shortlisted candidates); a mismatch goes back to the code writer
    with the critic's listed problems and its repair strategy. A draft the host's PNG check now refuses
    (replaced on disk since it was checked) is not shown: it counts as a failed check, and the round is
    retried."""
    ctx = runtime.context or RunContext()
    attempt = dict(state["attempts"][-1])
    label = str(ctx.vlm)
    site = Site(state["run_dir"], "critique", attempt["round"], "critic", prices=load_prices(ctx.prices))
    shortlist = list(attempt.get("shortlist") or [])
    split = ctx.critique == "split" and len(shortlist) <= 1
    records: list[dict] = []
    fixes: list[dict[str, Any]] | None = None
    labels: list[str] = []
    try:
        if len(shortlist) > 1:
            montage, labels = montage_for(state, attempt, shortlist, ctx.limits())
            messages = choice_messages(state, montage, labels)
        else:
            messages = critic_messages(state, attempt, ctx.limits(), visual=split)
        model = model_for(ctx, "critic")
        label = describe_model(model)
        verdict, notes, records = ask_critic(model, messages, site)
    except ImageRejected as exc:  # raised by critic_messages only (ask_critic never raises)
        return _refused(state, attempt, ctx, label, str(exc))
    except Exception as exc:  # the critic could not even be loaded: the deterministic checks decide
        verdict = {"match": None, "score": None, "problems": [], "summary": f"critic unavailable: {exc}"}
        verdict["source"] = "unavailable"
        notes = [f"{type(exc).__name__}: {str(exc)[:300]}"]
    verdict["model"] = label
    update: dict[str, Any] = {}
    if labels:
        chosen, note = resolve_choice(verdict.get("choice"), labels, shortlist)
        verdict["chosen"] = chosen
        notes.append(note)
        attempt = chosen_attempt(state, attempt, chosen)
    folder = attempt_dir(state["run_dir"], attempt["round"])
    write_json(folder / CRITIQUE_FILE, {**verdict, "notes": notes})
    if split and verdict.get("source") == "critic" and not verdict.get("match") and verdict.get("problems"):
        fixes, code_notes, code_records = ask_code_critic(model, state, attempt, verdict["problems"], site)
        records += code_records
        notes += code_notes
        write_json(folder / CODE_CRITIQUE_FILE, {"fixes": fixes, "notes": code_notes, "model": label})
        verdict["code_fixes"] = len(fixes) if fixes is not None else None
    attempt["verdict"] = verdict
    view = {**state, "attempts": [*state["attempts"][:-1], attempt]}
    decision = gate(after_critique(view, verdict, max_rounds=ctx.max_rounds), view, ctx)
    if fixes and decision.route == "write_code":
        decision.extra["feedback"] = decision.extra.get("feedback", "") + "\n\n" + fixes_text(fixes)
    update |= {
        "attempts": [attempt],
        **decision.update(),
        "strategy": verdict.get("strategy") or "patch",
        "calls": records,
        TRACE_KEY: {
            "model": label,
            "verdict": json.dumps(verdict, default=str)[:500],
            "notes": notes,
            "calls": records,
        },
    }
    return update


def fixes_text(fixes: list[dict[str, Any]]) -> str:
    """The code critic's map as the code writer reads it."""
    lines = ["Where in the program (the code critic's map of each problem to lines):"]
    for fix in fixes:
        lines.append(f"- lines {fix.get('lines')}: {fix.get('fix')} (problem: {fix.get('problem')})")
    return "\n".join(lines)


def montage_for(
    state: dict[str, Any], attempt: dict[str, Any], shortlist: list[int], limits: SandboxLimits
) -> tuple[bytes, list[str]]:
    """The shortlisted candidates' drafts side by side, labelled A, B, ...; saved as attempts/NN/candidates.png
    (what the critic saw). Raises ImageRejected when a draft cannot be read back."""
    from coco_agent.candidates.montage import side_by_side

    by_cand = {c["cand"]: c for c in attempt.get("candidates") or []}
    run_dir = Path(state["run_dir"])
    labels = [LABELS[i] for i in range(len(shortlist))]
    paths = [run_dir / by_cand[c]["draft_path"] for c in shortlist]
    png = side_by_side(paths, labels, limits)
    folder = attempt_dir(state["run_dir"], attempt["round"])
    (folder / CANDIDATES_IMAGE).write_bytes(png)
    attempt["montage_path"] = rel(state["run_dir"], folder / CANDIDATES_IMAGE)
    return png, labels


def resolve_choice(choice: Any, labels: list[str], shortlist: list[int]) -> tuple[int, str]:
    """The candidate the critic chose; a missing or unknown label falls back to the ranking's first."""
    text = str(choice or "").strip().upper().removeprefix("CANDIDATE").strip(" .:()")
    if text in labels:
        chosen = shortlist[labels.index(text)]
        return chosen, f"critic chose {text} (candidate {chosen})"
    why = (
        "named no candidate"
        if not text
        else f"named {str(choice)[:20]!r}, which is not one of {', '.join(labels)}"
    )
    return shortlist[0], f"critic {why}: the ranking's first ({labels[0]}, candidate {shortlist[0]}) is kept"


def chosen_attempt(state: dict[str, Any], attempt: dict[str, Any], cand: int) -> dict[str, Any]:
    """The round's attempt record pointing at candidate ``cand`` (its program, draft, checks, facts)."""
    from coco_agent.nodes.select import promote

    full = [c for c in state.get("candidates") or [] if c["round"] == attempt["round"] and c["cand"] == cand]
    record = full[0] if full else next(c for c in attempt.get("candidates") or [] if c["cand"] == cand)
    return promote(attempt, record)


def _refused(
    state: dict[str, Any], attempt: dict[str, Any], ctx: RunContext, label: str, reason: str
) -> dict[str, Any]:
    """The draft on disk fails the host's PNG check: no critic call, the attempt's checks fail, retry."""
    problem = f"the draft image could not be read back: {reason}"
    verdict = {"match": None, "score": None, "problems": [], "summary": problem, "source": "refused"}
    verdict["model"] = label
    notes = ["draft refused by the host's PNG check; the critic was not called"]
    write_json(attempt_dir(state["run_dir"], attempt["round"]) / CRITIQUE_FILE, {**verdict, "notes": notes})
    checks = {**(attempt.get("checks") or {}), "ok": False}
    checks["problems"] = [*checks.get("problems", []), problem]
    view = {**state, "attempts": [*state["attempts"][:-1], {**attempt, "checks": checks}]}  # ranks it last
    decision = gate(
        retry_or_stop(view, ctx.max_rounds, bullet([problem]), "draft refused: " + reason[:300]), view, ctx
    )
    return {
        "attempts": [{"round": attempt["round"], "verdict": verdict, "checks": checks}],
        **decision.update(),
        TRACE_KEY: {"model": label, "verdict": json.dumps(verdict, default=str)[:500], "notes": notes},
    }
