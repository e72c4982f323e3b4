"""Refinement that must not make things worse: strength by prompt kind, and the score guardrail."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image, ImageDraw
from support.fixtures_models import ScriptedChatModel
from support.paths import require
from support.text_renders import HAS_RAPIDOCR, NO_RAPIDOCR, SIGN, SIGN_PROMPT, render

from coco_agent.context import RunContext
from coco_agent.refiners.guardrail import judge, verify
from coco_agent.refiners.policy import choose_strength, prompt_kind
from coco_agent.runner import start_run
from coco_agent.trace import read_trace


def refine_trace(run_dir: Path) -> dict:
    return next(t for t in read_trace(run_dir) if t["node"] == "refine")


@pytest.mark.parametrize(
    "prompt, kind, level",
    [
        ("A bar chart titled 'Quarterly Sales 2025' comparing Q1-Q4 sales", "data graphic", "none"),
        ("A table with 3 columns: name, age, city", "data graphic", "none"),
        ("A flowchart of the login process", "layout", "light"),
        ("A slide titled 'Roadmap' with three bullet points", "layout", "light"),
        ('A street at dusk with a billboard that reads "FRESH BREWS"', "scene with text", "medium"),
        ("A cat astronaut floating above Saturn", "scene", "strong"),
        ("An apple pie on a kitchen table", "scene", "strong"),
    ],
)
def test_strength_follows_the_prompt_kind(prompt: str, kind: str, level: str) -> None:
    choice = choose_strength(prompt)
    assert (choice.kind, choice.level, choice.source) == (kind, level, "auto") and choice.why


def test_user_strength_wins() -> None:
    choice = choose_strength("A bar chart of sales", override=0.6)
    assert (choice.strength, choice.source, choice.level) == (0.6, "user", "strong")
    assert "data graphic" in choice.why
    assert prompt_kind("a plain scene", texts=["OPEN"]) == "scene with text"


def scores(text: float | None, clip: float | None, expected: list[str] | None = None) -> dict:
    return {
        "expected_text": ["OPEN"] if expected is None else expected,
        "text": {"score": text} if text is not None else {"available": False, "reason": "no OCR engine"},
        "clip": {"score": clip} if clip is not None else {"available": False, "reason": "no CLIP weights"},
    }


def test_judge_rules() -> None:
    assert not judge(scores(1.0, 0.30), scores(0.5, 0.40), 0.02).keep_refined  # text fell
    assert not judge(scores(1.0, 0.30), scores(1.0, 0.27), 0.02).keep_refined  # CLIP fell beyond the margin
    kept = judge(scores(0.8, 0.30), scores(0.8, 0.29), 0.02)
    assert kept.keep_refined and "within the 0.02 margin" in kept.why
    assert judge(scores(0.5, None), scores(0.9, None), 0.02).keep_refined  # CLIP unavailable: skipped
    unreadable = judge(scores(None, 0.3), scores(None, 0.4), 0.02)
    assert not unreadable.keep_refined and "cannot verify the text (no OCR engine)" in unreadable.why
    nothing = judge(scores(None, None, []), scores(None, None, []), 0.02)
    assert nothing.keep_refined and "unverified" in nothing.why


def test_verify_catches_text_painted_over() -> None:
    require(HAS_RAPIDOCR, NO_RAPIDOCR)
    draft = render(["FRESH BREWS, EVERY MORNING"])
    damaged = draft.copy()
    ImageDraw.Draw(damaged).rectangle((150, 0, 900, 200), fill="white")
    verdict, kept = verify(
        draft, damaged, SIGN_PROMPT, ["FRESH BREWS, EVERY MORNING"], margin=0.02, clip_model="none"
    )
    assert not verdict.keep_refined and "text accuracy fell: 1.000 -> 0.250" in verdict.why
    assert kept["draft"]["text"]["score"] == 1.0 and kept["refined"]["text"]["missing"] == [
        "brews",
        "every",
        "morning",
    ]
    assert kept["draft"]["clip"] == {"available": False, "reason": "CLIP is turned off (none)"}


def test_text_destroying_refiner_leaves_the_draft_final(tmp_path, tiny_img2img_dir, tiny_clip_dir) -> None:
    """A tiny random img2img pipeline wipes the sign's text: the final image is the draft and result.json says why.
    (With the text given to the refiner: --text-mode protect. Layered text, the default for this prompt, keeps
    the text out of the refiner's reach: tests/agent/test_text_mode.py.)"""
    require(HAS_RAPIDOCR, NO_RAPIDOCR)
    ctx = RunContext(
        llm=ScriptedChatModel(replies=[SIGN]),
        vlm="none",
        sandbox="process",
        refiner=str(tiny_img2img_dir),
        clip_model=str(tiny_clip_dir),
        text_mode="protect",
    )
    run_dir = tmp_path / "run"
    result = start_run(SIGN_PROMPT, ctx, run_dir)
    record = result["refinement"]
    assert result["status"] == "accepted" and record["kept"] is False
    assert (run_dir / "final.png").read_bytes() == (run_dir / "attempts/01/draft.png").read_bytes()
    assert (run_dir / "refined.png").exists()  # kept for inspection either way
    assert Image.open(run_dir / "refined.png").size == Image.open(run_dir / "final.png").size
    assert record["why"].startswith("kept the draft: text accuracy fell: 1.000 -> 0.000")
    assert record["strength"] == choose_strength(SIGN_PROMPT).as_dict()  # scene with text: medium, auto
    assert record["settings"]["strength"] == 0.35
    assert record["scores"]["expected_text"] == ["FRESH BREWS"]
    assert record["scores"]["expected_source"] == "quoted in the prompt"
    assert record["scores"]["draft"]["text"]["score"] == 1.0
    assert record["scores"]["refined"]["text"]["score"] == 0.0
    assert {c["check"] for c in record["checks"]} == {"text", "clip"}
    assert json.loads((run_dir / "result.json").read_text())["refinement"] == record
    trace = refine_trace(run_dir)
    assert trace["decision"] == "draft" and trace["strength_level"] == "medium"
    assert "text accuracy fell" in trace["why"] and "guardrail protects" in trace["strength_why"]


def test_data_graphics_are_not_refined(tmp_path) -> None:
    from support.programs import GOOD_BARS

    ctx = RunContext(
        llm=ScriptedChatModel(replies=[GOOD_BARS]),
        vlm="none",
        sandbox="process",
        refiner=str(tmp_path / "never"),
    )
    result = start_run("A bar chart titled 'Quarterly Sales 2025'", ctx, tmp_path / "run")
    record = result["refinement"]
    assert record["kept"] is False and record["why"].startswith("not refined: a data graphic")
    assert "error" not in record  # the refiner was never loaded
    assert not (tmp_path / "run/refined.png").exists()
    assert refine_trace(tmp_path / "run")["strength_level"] == "none"
