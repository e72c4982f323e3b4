"""The per-prompt work (coco_agent/batch/work.py) called directly on a temp dir, with no engine and no driver:
what a Ray actor on another machine will do."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from support.batch_helpers import clean_env, keyed, keyed_responder, requests_for, write_jsonl

from coco_agent.batch.prompts_file import PromptItem
from coco_agent.batch.work import (
    RAN,
    BatchAborted,
    BatchOptions,
    BatchTally,
    RunConflict,
    begin_batch,
    failed_event,
    finish_batch,
    plan_prompt,
    process_prompt,
    prompt_event,
    publish,
    run_prompt,
    warm_up,
)
from coco_agent.context import RunContext
from coco_agent.rundir import result_path, settings_path


def context(server) -> RunContext:
    return RunContext(llm="openai:test-model", vlm="none", base_url=server.base_url, sandbox="process")


def item(key: str, line: int = 1) -> PromptItem:
    return PromptItem(id=key, prompt=keyed(key), line=line, index=line - 1)


def test_importing_the_work_imports_no_engine():
    code = (
        "import sys, coco_agent.batch, coco_agent.batch.work, coco_agent.engines; "
        "print(sorted(m for m in sys.modules if m.startswith('coco_agent.engines.')))"
    )
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=clean_env(), timeout=120, cwd=root
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_plan_run_publish_and_the_event_without_a_driver(openai_server, tmp_path):
    """started -> run -> skipped; the same folder with another prompt is a conflict, or restarted under force."""
    openai_server.respond_with(keyed_responder())
    ctx = context(openai_server)
    one, run_dir = item("one"), tmp_path / "one"
    assert plan_prompt(one, run_dir, ctx) == "started"
    result = asyncio.run(run_prompt(one, run_dir, "started", ctx, batch_id="b1", deadline_s=120))
    assert result["status"] == "accepted" and json.loads(result_path(run_dir).read_text()) == result
    assert plan_prompt(one, run_dir, ctx) == "skipped"

    event = prompt_event(one, run_dir, "started", result, 1.23456)
    assert event == {
        "event": "prompt",
        "id": "one",
        "line": 1,
        "status": "accepted",
        "rounds": 1,
        "seconds": result["seconds"],
        "wall_seconds": 1.235,
        "how": "started",
        "error": "",
        "run_dir": str(run_dir),
    }
    json.dumps(event)  # a plain record: it crosses processes as it is

    assert publish(one, run_dir, result, None) == {}
    assert publish(one, run_dir, result, lambda i, d, r: r | {"scores": {"x": 1.0}}) == {"scores": {"x": 1.0}}
    assert json.loads(result_path(run_dir).read_text())["scores"] == {"x": 1.0}
    assert publish(one, run_dir, result, lambda i, d, r: 1 / 0) == {
        "hook_error": "ZeroDivisionError: division by zero"
    }

    other = PromptItem(id="one", prompt=keyed("other"), line=1, index=0)
    with pytest.raises(RunConflict, match="--force redoes it"):
        plan_prompt(other, run_dir, ctx)
    assert plan_prompt(other, run_dir, ctx, force=True) == "restarted"
    assert plan_prompt(one, run_dir, replace(ctx, max_rounds=2), force=True) == "restarted"

    result_path(run_dir).unlink()  # interrupted: run.json, checkpoints, no result.json
    assert plan_prompt(one, run_dir, ctx) == "resumed"
    with pytest.raises(ValueError, match="not 'skipped'"):
        asyncio.run(run_prompt(one, run_dir, "skipped", ctx, batch_id="b1"))


def test_a_failed_run_is_kept_or_restarted(openai_server, tmp_path):
    refuse = (400, {"error": {"message": "content policy says no", "type": "invalid_request_error"}})
    openai_server.respond_with(keyed_responder(coder={"bad": [refuse]}))
    ctx = context(openai_server)
    bad, run_dir = item("bad"), tmp_path / "bad"
    result = asyncio.run(run_prompt(bad, run_dir, "started", ctx, batch_id="b1"))
    assert result["status"] == "failed" and "content policy says no" in result["error"]
    assert plan_prompt(bad, run_dir, ctx) == "skipped"
    assert plan_prompt(bad, run_dir, ctx, retry_failed=True) == "restarted"


def test_process_prompt_is_exactly_once_and_summarised(openai_server, tmp_path):
    """process_prompt twice: one model call; the tally and finish_batch write the summary as an engine would."""
    openai_server.respond_with(keyed_responder())
    prompts = write_jsonl(
        tmp_path / "p.jsonl", [{"id": "a", "prompt": keyed("a")}, {"id": "b", "prompt": "x"}]
    )
    options = BatchOptions(prompts, tmp_path / "out", context(openai_server), deadline_s=120)
    manifest = begin_batch(options)
    assert (tmp_path / "out" / "batch.json").exists() and manifest["options"]["engine"] == "local"
    hooked = []
    warmed = []

    async def warm() -> None:
        warmed.append(True)

    def hook(i, run_dir, result):
        hooked.append(i.id)
        return None

    tally = BatchTally()
    a = next(iter(options.items()))
    first = asyncio.run(process_prompt(a, options, manifest["batch_id"], on_result=hook, warm=warm))
    again = asyncio.run(process_prompt(a, options, manifest["batch_id"], on_result=hook, warm=warm))
    assert (first["how"], first["status"], again["how"]) == ("started", "accepted", "skipped")
    assert hooked == ["a"] and warmed == [True]  # neither the hook nor the warm-up for a skipped prompt
    assert len(requests_for(openai_server, "a")) == 1
    for event in (first, again):
        tally.add(event)

    # a run directory that cannot be planned (run.json is a list) fails that prompt, with its error
    b = list(options.items())[1]
    settings_path(options.run_dir(b)).parent.mkdir(parents=True)
    settings_path(options.run_dir(b)).write_text("[]")
    broken = asyncio.run(process_prompt(b, options, manifest["batch_id"]))
    assert broken["how"] == "error" and broken["status"] == "failed" and "AttributeError" in broken["error"]
    tally.add(broken)
    assert tally.ran == 1 and tally.errors == {"b": broken["error"]}
    assert failed_event(b, options.run_dir(b), RuntimeError("x"))["error"] == "RuntimeError: x"

    summary = finish_batch(options, manifest, tally, wall_seconds=1.0)
    assert summary["statuses"] == {
        "accepted": 1,
        "max_rounds": 0,
        "budget": 0,
        "failed": 1,
        "paused": 0,
        "pending": 0,
    }
    assert summary["ran_this_time"] == 1
    rows = json.loads((tmp_path / "out" / "summary.json").read_text())["rows"]
    assert [(r["id"], r["status"]) for r in rows] == [("a", "accepted"), ("b", "failed")]
    assert {"started", "resumed", "restarted"} == RAN


def test_warm_up_failure_aborts(tmp_path):
    ctx = RunContext(
        llm="openai:test-model", vlm="none", sandbox="process", refiner=str(tmp_path / "no-such")
    )
    with pytest.raises(BatchAborted, match="cannot run the batch"):
        warm_up(ctx)
