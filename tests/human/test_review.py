"""`--review draft|refine|all`: the run pauses with LangGraph interrupt() (checkpointed), `coco review` answers.

The real CLI and langchain-openai client against the local server, the process sandbox, real SQLite checkpoints.
"""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from support.batch_helpers import (
    clean_env,
    coco,
    keyed,
    keyed_responder,
    model_args,
    requests_for,
    write_jsonl,
)
from support.fixtures_models import ScriptedChatModel
from support.programs import ACCEPT, GOOD_BARS, GOOD_BARS_V2

from coco_agent.cli.inline_image import kitty, protocol, sixel
from coco_agent.context import RunContext
from coco_agent.errors import ReviewRefused
from coco_agent.human.review import pending_review, review_run
from coco_agent.runner import resume_run, start_run
from coco_agent.trace import read_trace

PROMPT = "A bar chart titled 'Quarterly Sales 2025' comparing Q1-Q4 sales: 100, 120, 150, 140"


def generate(server, run_dir: Path, *extra: str) -> subprocess.CompletedProcess:
    return coco("generate", PROMPT, "-o", str(run_dir), *model_args(server, "server"), *extra)


def test_review_the_draft_reject_then_accept(openai_server, tmp_path):
    run_dir = tmp_path / "run"
    openai_server.script(GOOD_BARS, ACCEPT)
    paused = generate(openai_server, run_dir, "--review", "draft")
    assert paused.returncode == 4, paused.stderr
    assert "waiting for review" in paused.stdout and f"coco review {run_dir}" in paused.stdout
    assert not (run_dir / "result.json").exists()
    review = json.loads((run_dir / "review.json").read_text())
    assert review["point"] == "draft" and review["draft"] == "attempts/01/draft.png"
    assert review["verdict"]["match"] is True and review["planned_refinement"]["refiner"] == "none"

    shown = coco("review", str(run_dir))
    assert shown.returncode == 0 and str(run_dir / "attempts/01/draft.png") in shown.stdout
    assert "all four quarters" in shown.stdout  # the critique
    assert coco("resume", str(run_dir)).returncode == 4  # resume does not answer for the person
    assert len(openai_server.chat_requests) == 2

    openai_server.script(GOOD_BARS_V2, ACCEPT)
    rejected = coco("review", str(run_dir), "reject", "the bars must be orange")
    assert rejected.returncode == 4, rejected.stderr  # round 2 is drawn, and waits for review in its turn
    asked = openai_server.chat_requests[2]
    assert "A person reviewing the draft rejected it" in json.dumps(asked["messages"])
    assert "the bars must be orange" in json.dumps(asked["messages"])
    assert json.loads((run_dir / "review.json").read_text())["draft"] == "attempts/02/draft.png"

    accepted = coco("review", str(run_dir), "accept", "--json")
    assert accepted.returncode == 0, accepted.stderr
    result = json.loads(accepted.stdout)
    assert result["status"] == "accepted" and result["rounds"] == 2 and not (run_dir / "review.json").exists()
    assert [r["action"] for a in result["attempts"] for r in a["reviews"]] == ["reject", "accept"]
    assert json.loads((run_dir / "result.json").read_text())["status"] == "accepted"
    reviews = [t for t in read_trace(run_dir) if t["node"] == "review_draft"]
    assert [t["decision"] for t in reviews] == ["write_code", "refine"]

    again = coco("review", str(run_dir), "accept")
    assert again.returncode == 2 and "waits for no review" in again.stderr


def test_review_all_points_and_edit_at_the_review(tmp_path):
    coder = ScriptedChatModel([GOOD_BARS])
    critic = ScriptedChatModel([ACCEPT, ACCEPT])
    ctx = RunContext(llm=coder, vlm=critic, sandbox="process", review="all")
    run_dir = tmp_path / "run"
    first = start_run(PROMPT, ctx, run_dir)
    assert first["status"] == "paused" and first["review"]["point"] == "draft"
    assert resume_run(run_dir, ctx=ctx)["status"] == "paused"  # still paused after a "crash and resume"

    for bad, why in (
        ({"action": "maybe"}, "answer with"),
        ({"action": "reject"}, "needs its feedback"),
        ({"action": "edit", "code": ""}, "empty"),
        ("accept", "answer with"),
    ):
        with pytest.raises(ReviewRefused, match=why):
            review_run(run_dir, bad, ctx=ctx)
    assert pending_review(run_dir)["point"] == "draft"

    code = (run_dir / "attempts/01/code.py").read_text().replace("tab:blue", "tab:green")
    edited = review_run(run_dir, {"action": "edit", "code": code}, ctx=ctx)
    assert edited["status"] == "paused" and edited["review"]["point"] == "draft"
    assert edited["review"]["draft"] == "attempts/02/draft.png"
    assert edited["attempts"][-1]["source"] == "human" and critic.calls == 2  # the human draft is critiqued
    after_draft = review_run(run_dir, {"action": "accept"}, ctx=ctx)
    assert after_draft["status"] == "paused" and after_draft["review"]["point"] == "refine"
    assert after_draft["review"]["final"] == "final.png" and (run_dir / "final.png").exists()
    done = review_run(run_dir, {"action": "accept"}, ctx=ctx)
    assert done["status"] == "accepted" and done["rounds"] == 2 and coder.calls == 1
    with pytest.raises(ReviewRefused, match="finished"):
        review_run(run_dir, {"action": "accept"}, ctx=ctx)


def test_a_batch_with_review_never_waits_for_a_paused_run_and_survives_sigkill(openai_server, tmp_path):
    """One worker: a and b pause, and c still runs; SIGKILL while c writes its program; the rerun finds a and b
    still paused (no model call for them) and brings c to its review; `coco review` answers a."""
    hang = threading.Event()

    def stuck(body):
        hang.wait(120)
        return GOOD_BARS

    openai_server.respond_with(keyed_responder(coder={"c": [stuck]}))
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": k, "prompt": keyed(k)} for k in ("a", "b", "c")])
    out = tmp_path / "out"
    args = ["batch", str(prompts), "-o", str(out), "--workers", "1", "--review", "draft"]
    args += model_args(openai_server, "server")
    proc = subprocess.Popen(
        [sys.executable, "-m", "coco_agent.cli", *args, "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=clean_env(),
    )
    try:
        deadline = time.monotonic() + 180
        while not requests_for(openai_server, "c"):
            assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
            assert time.monotonic() < deadline, "c never started"
            time.sleep(0.05)
        assert (out / "a/review.json").exists() and (out / "b/review.json").exists()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
        hang.set()
    seen = len(openai_server.chat_requests)

    rerun = coco(*args)
    assert rerun.returncode == 4, rerun.stderr
    assert "3 run(s) wait for review" in rerun.stderr
    for key in ("a", "b", "c"):
        assert f"coco review {out / key}" in rerun.stderr
    assert "waiting for review" in rerun.stdout
    later = openai_server.chat_requests[seen:]
    assert {json.dumps(b).count("KEY-c") > 0 for b in later} == {True}  # only c was asked anything
    summary = json.loads((out / "summary.json").read_text())
    assert summary["statuses"]["paused"] == 3 and summary["statuses"]["pending"] == 0
    assert {r["status"] for r in summary["rows"]} == {"paused"}

    answered = coco("review", str(out / "a"), "accept", "--json")
    assert answered.returncode == 0 and json.loads(answered.stdout)["status"] == "accepted"
    listing = coco("review", str(out), "--json")
    assert json.loads(listing.stdout) == [str(out / "b"), str(out / "c")]
    assert coco("report", str(out)).returncode == 0
    assert "badge paused" in (out / "report.html").read_text()


def test_inline_images_only_where_the_terminal_shows_them(tmp_path, monkeypatch):
    from PIL import Image

    image = Image.new("RGB", (40, 20), "white")
    image.paste((200, 30, 30), (5, 5, 35, 15))
    monkeypatch.delenv("COCO_INLINE_IMAGES", raising=False)
    monkeypatch.setenv("TERM", "xterm-kitty")
    assert protocol(io.StringIO()) == "none"  # not a terminal: never an escape sequence
    monkeypatch.setenv("COCO_INLINE_IMAGES", "kitty")
    assert protocol() == "kitty"
    encoded = kitty(image)
    assert encoded.startswith("\x1b_Gf=100,a=T,m=0;iVBOR") and encoded.endswith("\x1b\\")
    pic = sixel(image)
    assert pic.startswith('\x1bP0;1;0q"1;1;40;20') and pic.endswith("\x1b\\") and pic.count("-") == 4
