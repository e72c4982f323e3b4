"""The agent loop with scripted models: every route, its feedback, and the run directory it leaves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.fixtures_models import ScriptedChatModel
from support.programs import ACCEPT, BLANK, CRASH, GOOD_BARS, GOOD_BARS_V2, PROSE, SMALL_BARS, reject

from coco_agent.context import RunContext
from coco_agent.runner import resume_run, start_run
from coco_agent.trace import read_trace

PROMPT = "A bar chart titled 'Quarterly Sales 2025' comparing Q1-Q4 sales: 100, 120, 150, 140"


def run(
    tmp_path: Path, coder: list, critic: list | str | None, **ctx_kwargs
) -> tuple[dict, Path, list, list]:
    coder_model = ScriptedChatModel(replies=coder)
    critic_model = ScriptedChatModel(replies=critic) if isinstance(critic, list) else (critic or "none")
    ctx = RunContext(llm=coder_model, vlm=critic_model, sandbox="process", **ctx_kwargs)
    run_dir = tmp_path / "run"
    result = start_run(PROMPT, ctx, run_dir)
    return result, run_dir, coder_model.received, getattr(critic_model, "received", [])


def last_human_text(messages: list) -> str:
    content = messages[-1].content
    return content if isinstance(content, str) else " ".join(b.get("text", "") for b in content)


def routes(run_dir: Path) -> list[tuple[str, int, str]]:
    return [
        (t["node"], t.get("round"), t.get("decision")) for t in read_trace(run_dir) if t["node"] != "runner"
    ]


def test_accept_first_round_then_refine_none(tmp_path):
    result, run_dir, coder_calls, critic_calls = run(tmp_path, [GOOD_BARS], [ACCEPT])
    assert result["status"] == "accepted" and result["rounds"] == 1
    assert (run_dir / "final.png").read_bytes() == (run_dir / "attempts/01/draft.png").read_bytes()
    assert (run_dir / "attempts/01/code.py").read_text().startswith("import matplotlib")
    assert json.loads((run_dir / "attempts/01/critique.json").read_text())["match"] is True
    assert result["refinement"]["refiner"] == "none"
    assert set(result["seconds_per_node"]) >= {
        "prepare",
        "write_code",
        "execute",
        "check",
        "critique",
        "refine",
    }
    assert ("critique", 1, "refine") in routes(run_dir)
    # the critic really received the draft as an image block
    blocks = critic_calls[0][-1].content
    image = [b for b in blocks if b.get("type") == "image_url"]
    assert image and image[0]["image_url"]["url"].startswith("data:image/png;base64,iVBOR")
    assert len(coder_calls) == 1


def test_crash_retries_with_traceback(tmp_path):
    result, run_dir, coder_calls, _ = run(tmp_path, [CRASH, GOOD_BARS], [ACCEPT])
    assert result["status"] == "accepted" and result["rounds"] == 2
    feedback = last_human_text(coder_calls[1])
    assert "boom-4711" in feedback and "Traceback" in feedback
    assert "raise ValueError" in feedback  # the previous program is shown back
    assert (run_dir / "attempts/01/error.txt").exists() and not (run_dir / "attempts/01/draft.png").exists()
    assert ("check", 1, "write_code") in routes(run_dir)


def test_reject_retries_with_the_critics_problems(tmp_path):
    problem = "the title must read 'Quarterly Sales 2025' but reads 'Sales'"
    result, run_dir, coder_calls, critic_calls = run(
        tmp_path, [GOOD_BARS, GOOD_BARS_V2], [reject(problem), ACCEPT]
    )
    assert result["status"] == "accepted" and result["rounds"] == 2
    assert problem in last_human_text(coder_calls[1])
    assert len(critic_calls) == 2
    assert ("critique", 1, "write_code") in routes(run_dir)
    assert result["best_round"] == 2


def test_max_rounds_keeps_best_draft_flagged(tmp_path):
    critic = [reject("bars are the wrong colour"), reject("still wrong")]
    result, run_dir, coder_calls, _ = run(tmp_path, [GOOD_BARS, GOOD_BARS_V2], critic, max_rounds=2)
    assert result["status"] == "max_rounds" and result["rounds"] == 2
    assert (run_dir / "final.png").exists() and result["paths"]["final"] == "final.png"
    assert result["best_round"] in (1, 2) and len(coder_calls) == 2


def test_unparsable_verdict_gets_one_repair_then_checks_decide(tmp_path):
    result, run_dir, _, critic_calls = run(tmp_path, [GOOD_BARS], ["looks fine to me!", "I said it is fine"])
    assert result["status"] == "accepted"
    assert len(critic_calls) == 2  # the first answer, then exactly one repair try
    critique = json.loads((run_dir / "attempts/01/critique.json").read_text())
    assert critique["source"] == "unparsable"
    assert "repair" in last_human_text(critic_calls[1]).lower() or "JSON" in last_human_text(critic_calls[1])


def test_repaired_verdict_is_used(tmp_path):
    result, run_dir, _, critic_calls = run(
        tmp_path, [GOOD_BARS, GOOD_BARS_V2], ["hmm", reject("no legend"), ACCEPT]
    )
    assert result["rounds"] == 2 and result["status"] == "accepted"
    assert json.loads((run_dir / "attempts/01/critique.json").read_text())["problems"] == ["no legend"]


def test_prose_answer_and_blank_image_are_sent_back(tmp_path):
    result, run_dir, coder_calls, _ = run(tmp_path, [PROSE, BLANK, GOOD_BARS], None)
    assert result["status"] == "accepted" and result["rounds"] == 3
    assert "no program" in last_human_text(coder_calls[1])
    assert "drew (almost) nothing" in last_human_text(coder_calls[2])
    assert result["models"]["critic"] == "none"


def test_no_draft_in_any_round_fails_with_reason(tmp_path):
    result, run_dir, _, _ = run(tmp_path, [PROSE, CRASH], None, max_rounds=2)
    assert result["status"] == "failed" and "no draft rendered in 2 round" in result["error"]
    assert not (run_dir / "final.png").exists()


@pytest.mark.parametrize("prompt, needle", [("   ", "empty"), ("x" * 100_000, "100,000 characters")])
def test_bad_prompts_fail_clearly(tmp_path, prompt, needle):
    ctx = RunContext(llm=ScriptedChatModel(replies=[]), vlm="none", sandbox="process")
    result = start_run(prompt, ctx, tmp_path / "run")
    assert result["status"] == "failed" and needle in result["error"]
    assert json.loads((tmp_path / "run/result.json").read_text())["status"] == "failed"


def test_model_error_ends_the_run_clearly(tmp_path):
    coder = ScriptedChatModel(replies=[TimeoutError("upstream timed out after 180 s")])
    result = start_run(PROMPT, RunContext(llm=coder, vlm="none", sandbox="process"), tmp_path / "run")
    assert result["status"] == "failed"
    assert "code writer" in result["error"] and "timed out" in result["error"]


def test_resume_continues_without_redoing_finished_nodes(tmp_path):
    run_dir = tmp_path / "run"
    coder = ScriptedChatModel(replies=[CRASH, KeyboardInterrupt()])
    ctx = RunContext(llm=coder, vlm="none", sandbox="process")
    with pytest.raises(KeyboardInterrupt):
        start_run(PROMPT, ctx, run_dir)
    assert not (run_dir / "result.json").exists()
    coder2 = ScriptedChatModel(replies=[GOOD_BARS])
    result = resume_run(run_dir, ctx=RunContext(llm=coder2, vlm="none", sandbox="process"))
    assert result["status"] == "accepted" and result["rounds"] == 2
    assert len(coder2.received) == 1 and "boom-4711" in last_human_text(coder2.received[0])
    executed = [t["round"] for t in read_trace(run_dir) if t["node"] == "execute"]
    assert executed == [1, 2]  # round 1 ran once, before the interruption
    assert resume_run(run_dir, ctx=RunContext(llm=coder2, vlm="none"))["status"] == "accepted"  # no-op


def test_resume_of_a_published_run_whose_checkpoints_are_gone_redoes_nothing(tmp_path):
    """A run finished on Ray has its checkpoints pruned: `coco resume` there must not start it over (every
    model call again, its files overwritten); a failed run may still start over."""
    run_dir = tmp_path / "run"
    ctx = RunContext(llm=ScriptedChatModel(replies=[GOOD_BARS]), vlm="none", sandbox="process")
    assert start_run(PROMPT, ctx, run_dir)["status"] == "accepted"
    (run_dir / "checkpoints.sqlite").unlink()
    idle = ScriptedChatModel(replies=[])
    result = resume_run(run_dir, ctx=RunContext(llm=idle, vlm="none", sandbox="process"))
    assert result["status"] == "accepted" and result["resume"] == "not continued: its checkpoints are gone"
    assert idle.received == [] and [t["round"] for t in read_trace(run_dir) if t["node"] == "execute"] == [1]

    failed = tmp_path / "failed"
    crash = RunContext(llm=ScriptedChatModel(replies=[TimeoutError("upstream timed out")]), vlm="none")
    assert start_run(PROMPT, crash, failed)["status"] == "failed"
    (failed / "checkpoints.sqlite").unlink()
    again = ScriptedChatModel(replies=[GOOD_BARS])
    assert (
        resume_run(failed, ctx=RunContext(llm=again, vlm="none", sandbox="process"))["status"] == "accepted"
    )
    assert len(again.received) == 1


def test_hf_model_writes_code_through_the_graph(tmp_path, tiny_causal_lm_dir):
    """A tiny random transformers model loaded by the production loader answers gibberish: no code, clean fail."""
    ctx = RunContext(llm=f"hf:{tiny_causal_lm_dir}", vlm="none", sandbox="process", max_rounds=1)
    result = start_run(PROMPT, ctx, tmp_path / "run")
    assert result["models"]["coder"] == f"hf:{tiny_causal_lm_dir}"
    assert result["status"] == "failed" and "no draft rendered" in result["error"]
    assert (tmp_path / "run/attempts/01/answer.md").exists()


def test_diffusers_refiner_makes_the_final(tmp_path, tiny_img2img_dir):
    ctx = RunContext(
        llm=ScriptedChatModel(replies=[SMALL_BARS]),
        vlm="none",
        sandbox="process",
        refiner=str(tiny_img2img_dir),
        refine_strength=0.5,  # the user's choice (a chart is not refined by default)
        refine_guard=False,  # keep the refined image unverified (the guardrail has its own tests)
    )
    result = start_run("A tiny bar chart of four quarters' sales, no labels", ctx, tmp_path / "run")
    run_dir = tmp_path / "run"
    assert result["status"] == "accepted" and result["refinement"]["kept"] is True
    from PIL import Image

    draft, final = Image.open(run_dir / "attempts/01/draft.png"), Image.open(run_dir / "final.png")
    assert final.size == draft.size
    assert (run_dir / "refined.png").read_bytes() == (run_dir / "final.png").read_bytes()
    assert (run_dir / "final.png").read_bytes() != (run_dir / "attempts/01/draft.png").read_bytes()
    assert result["refinement"]["settings"]["strength"] == 0.5
    assert result["refinement"]["strength"]["source"] == "user"


def test_broken_refiner_keeps_the_draft(tmp_path):
    ctx = RunContext(
        llm=ScriptedChatModel(replies=[GOOD_BARS]),
        vlm="none",
        sandbox="process",
        refiner=str(tmp_path / "missing"),
        refine_strength=0.3,
    )
    result = start_run(PROMPT, ctx, tmp_path / "run")
    assert result["status"] == "accepted" and result["refinement"]["kept"] is False
    assert "error" in result["refinement"]
    assert (tmp_path / "run/final.png").read_bytes() == (tmp_path / "run/attempts/01/draft.png").read_bytes()
