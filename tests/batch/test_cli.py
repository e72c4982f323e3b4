"""`coco batch` end to end: the real CLI and langchain-openai client against the local server, process sandbox.

Exactly once across SIGKILL, a bad prompt failing alone, OUT folders that belong to another batch, JSON events,
per-run deadlines, runs starting before a long file is counted, and run metadata for LangSmith.
"""

from __future__ import annotations

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
    request_key,
    requests_for,
    write_jsonl,
)
from support.programs import CRASH, GOOD_BARS

from coco_agent.batch import BatchOptions, BatchRefused, run_batch
from coco_agent.cli import main
from coco_agent.context import RunContext
from coco_agent.trace import read_trace


def result_of(out: Path, key: str) -> dict:
    return json.loads((out / key / "result.json").read_text())


def wait_until(condition, what: str, proc: subprocess.Popen, limit: float = 120) -> None:
    """Poll until `condition()` holds while `proc` runs (a bail-out for a stuck test, not a timing assertion)."""
    deadline = time.monotonic() + limit
    while not condition():
        if proc.poll() is not None:
            pytest.fail(f"the batch ended before {what}: {proc.stderr.read().decode()[-3000:]}")
        assert time.monotonic() < deadline, f"gave up waiting: {what}"
        time.sleep(0.05)


def test_sigkill_mid_batch_then_rerun_is_exactly_once(openai_server, tmp_path):
    """Kill -9 with two prompts done, two in flight (one in its second round) and two not started; rerun."""
    keys = ["a", "b", "c", "d", "e", "f"]
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": k, "prompt": keyed(k)} for k in keys])
    out = tmp_path / "out"
    hang = threading.Event()

    def stuck(body):
        hang.wait(120)
        return GOOD_BARS

    openai_server.respond_with(keyed_responder(coder={"c": [CRASH, stuck], "d": [stuck]}))
    args = ["batch", str(prompts), "-o", str(out), "--workers", "2", "--json", *model_args(openai_server)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "coco_agent.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=clean_env(),
    )
    try:
        wait_until(
            lambda: len(requests_for(openai_server, "c")) == 2 and len(requests_for(openai_server, "d")) == 1,
            "c in round 2 and d in round 1",
            proc,
        )
        done_before = {k for k in keys if (out / k / "result.json").exists()}
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
        hang.set()
    assert done_before == {"a", "b"}
    assert not (out / "summary.json").exists()
    seen = len(openai_server.chat_requests)

    openai_server.respond_with(keyed_responder())
    rerun = coco(*args)
    assert rerun.returncode == 0, rerun.stderr
    lines = [json.loads(line) for line in rerun.stdout.splitlines()]
    events, summary = lines[:-1], lines[-1]
    assert summary["event"] == "summary" and summary["n"] == 6 and summary["statuses"]["accepted"] == 6
    assert sorted(e["id"] for e in events) == keys
    how = {e["id"]: e["how"] for e in events}
    assert how == {
        "a": "skipped",
        "b": "skipped",
        "c": "resumed",
        "d": "resumed",
        "e": "started",
        "f": "started",
    }

    after = [request_key(body) for body in openai_server.chat_requests[seen:]]
    assert "a" not in after and "b" not in after  # finished prompts: not a single model call
    assert sorted(after) == ["c", "d", "e", "f"]
    c_resumed = requests_for(openai_server, "c")[-1]
    assert "boom-4711" in json.dumps(c_resumed["messages"])  # round 2 from the checkpoint, with the traceback
    assert result_of(out, "c")["rounds"] == 2 and result_of(out, "d")["rounds"] == 1
    for key in keys:
        starts = [t for t in read_trace(out / key) if t["node"] == "runner"]
        finals = [t for t in read_trace(out / key) if t["node"] == "finalize"]
        assert len(finals) == 1, key  # nothing finished twice
        assert [t["decision"] for t in starts][:1] == ["start"]
    rows = json.loads((out / "summary.json").read_text())["rows"]
    assert [r["id"] for r in rows] == keys and {r["status"] for r in rows} == {"accepted"}
    assert (out / "summary.csv").read_text().count("\n") == 7


def test_a_bad_prompt_fails_alone(openai_server, tmp_path, capsys):
    """A 100 KB prompt, a model that refuses with HTTP 400, and a good prompt: only the good one is accepted."""
    refuse = (400, {"error": {"message": "content policy says no", "type": "invalid_request_error"}})
    openai_server.respond_with(keyed_responder(coder={"refused": [refuse]}))
    records = [
        {"id": "huge", "prompt": "y" * 100_000},
        {"id": "refused", "prompt": keyed("refused")},
        {"id": "good", "prompt": keyed("good")},
    ]
    out = tmp_path / "out"
    proc = coco(
        "batch", str(write_jsonl(tmp_path / "p.jsonl", records)), "-o", str(out), "--json",
        *model_args(openai_server),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout.splitlines()[-1])
    assert summary["statuses"] == {
        "accepted": 1,
        "max_rounds": 0,
        "budget": 0,
        "failed": 2,
        "paused": 0,
        "pending": 0,
    }
    assert "characters long" in result_of(out, "huge")["error"]
    assert "content policy says no" in result_of(out, "refused")["error"]
    assert len(requests_for(openai_server, "refused")) == 1  # a 400 is not retried
    assert result_of(out, "good")["status"] == "accepted"
    assert "Traceback" not in proc.stderr

    # a rerun keeps the failures; --retry-failed starts them over (the model has changed its mind)
    openai_server.respond_with(keyed_responder())
    args = ["batch", str(tmp_path / "p.jsonl"), "-o", str(out), "--json", *model_args(openai_server)]
    assert main(args) == 0
    again = [json.loads(line) for line in capsys.readouterr().out.splitlines()[:-1]]
    assert {e["how"] for e in again} == {"skipped"}
    assert main([*args, "--retry-failed"]) == 0
    retried = capsys.readouterr().out.splitlines()[:-1]
    how = {e["id"]: (e["how"], e["status"]) for e in map(json.loads, retried)}
    assert how == {
        "huge": ("restarted", "failed"),
        "refused": ("restarted", "accepted"),
        "good": ("skipped", "accepted"),
    }


def test_malformed_file_and_duplicate_ids_name_the_line(openai_server, tmp_path, capsys):
    def batch(path: Path, out: str) -> tuple[int, str]:
        code = main(["batch", str(path), "-o", str(tmp_path / out), *model_args(openai_server)])
        return code, capsys.readouterr().err

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "fine"}\n{"prompt": "broken",\n')
    code, err = batch(bad, "o1")
    assert code == 2 and f"{bad}:2: not valid JSON" in err
    dup = write_jsonl(tmp_path / "dup.jsonl", [{"id": "x", "prompt": "a"}, {"id": "x", "prompt": "b"}])
    code, err = batch(dup, "o2")
    assert code == 2 and "dup.jsonl:2: duplicate id 'x' (first used on line 1)" in err
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    code, err = batch(empty, "o3")
    assert code == 2 and "empty.txt:1: no prompts" in err and not (tmp_path / "o3").exists()
    unsafe = write_jsonl(tmp_path / "unsafe.jsonl", [{"id": "../up", "prompt": "a"}])
    code, err = batch(unsafe, "o4")
    assert code == 2 and "unsafe.jsonl:1: id '../up' cannot be a folder name" in err
    assert "Traceback" not in err and openai_server.chat_requests == []


def test_out_of_another_batch_is_refused_unless_forced(openai_server, tmp_path):
    openai_server.respond_with(keyed_responder())
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": "one", "prompt": keyed("one")}])
    out = tmp_path / "out"
    ctx = RunContext(llm="openai:test-model", vlm="none", base_url=openai_server.base_url, sandbox="process")
    run_batch(BatchOptions(prompts, out, ctx))
    calls = len(openai_server.chat_requests)

    other = RunContext(**{**ctx.__dict__, "max_rounds": 2})
    with pytest.raises(BatchRefused, match="made by another batch .*max_rounds 4, not 2"):
        run_batch(BatchOptions(prompts, out, other))
    elsewhere = write_jsonl(tmp_path / "q.jsonl", [{"id": "one", "prompt": keyed("one")}])
    with pytest.raises(BatchRefused, match="prompts file"):
        run_batch(BatchOptions(elsewhere, out, ctx))
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(BatchRefused, match="not made by `coco batch`"):
        run_batch(BatchOptions(prompts, tmp_path / "mine", ctx))
    assert len(openai_server.chat_requests) == calls

    events = []
    run_batch(BatchOptions(prompts, out, other, force=True), on_event=events.append)
    assert [e["how"] for e in events if e["event"] == "prompt"] == ["restarted"]
    assert json.loads((out / "one" / "run.json").read_text())["context"]["max_rounds"] == 2
    assert json.loads((out / "batch.json").read_text())["settings"]["max_rounds"] == 2

    write_jsonl(prompts, [{"id": "one", "prompt": keyed("one", "An edited prompt")}])  # same id, new text
    events.clear()
    run_batch(BatchOptions(prompts, out, other), on_event=events.append)
    [event] = [e for e in events if e["event"] == "prompt"]
    assert event["how"] == "error" and "holds a run of another prompt" in event["error"]
    assert json.loads((out / "summary.json").read_text())["rows"][0]["status"] == "failed"
    events.clear()
    run_batch(BatchOptions(prompts, out, other, force=True), on_event=events.append)
    [event] = [e for e in events if e["event"] == "prompt"]
    assert event["how"] == "restarted" and event["status"] == "accepted"


def test_a_batch_from_before_a_new_setting_continues(openai_server, tmp_path):
    """Settings a newer version added count as their defaults: finished prompts stay finished, no model call."""
    openai_server.respond_with(keyed_responder())
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": "one", "prompt": keyed("one")}])
    out = tmp_path / "out"
    ctx = RunContext(llm="openai:test-model", vlm="none", base_url=openai_server.base_url, sandbox="process")
    run_batch(BatchOptions(prompts, out, ctx))
    calls = len(openai_server.chat_requests)
    for path, key in ((out / "batch.json", "settings"), (out / "one" / "run.json", "context")):
        data = json.loads(path.read_text())
        del data[key]["repairs"]  # as written before the repair step existed
        path.write_text(json.dumps(data))
    events = []
    run_batch(BatchOptions(prompts, out, ctx), on_event=events.append)
    assert [e["how"] for e in events if e["event"] == "prompt"] == ["skipped"]
    assert len(openai_server.chat_requests) == calls
    changed = RunContext(**{**ctx.__dict__, "repairs": False})  # a real change is still refused
    with pytest.raises(BatchRefused, match="repairs True, not False"):
        run_batch(BatchOptions(prompts, out, changed))


def test_deadline_stops_one_run_and_the_rest_go_on(openai_server, tmp_path):
    release = threading.Event()

    def stuck(body):
        release.wait(60)
        return GOOD_BARS

    openai_server.respond_with(keyed_responder(coder={"slow": [stuck]}))
    records = [{"id": "slow", "prompt": keyed("slow")}, {"id": "quick", "prompt": keyed("quick")}]
    ctx = RunContext(llm="openai:test-model", vlm="none", base_url=openai_server.base_url, sandbox="process")
    out = tmp_path / "out"
    try:
        summary = run_batch(
            BatchOptions(write_jsonl(tmp_path / "p.jsonl", records), out, ctx, workers=2, deadline_s=3)
        )
    finally:
        release.set()
    assert summary["statuses"]["failed"] == 1 and summary["statuses"]["accepted"] == 1
    assert result_of(out, "slow")["error"].startswith("deadline: the run took longer than 3 s")


def test_runs_start_before_the_file_is_counted(openai_server, tmp_path, monkeypatch):
    """The whole-file check runs beside the workers: the first prompt finishes while it is still going."""
    import coco_agent.engines.local as batch_runner

    counted = threading.Event()
    real_count = batch_runner.count_prompts

    def slow_count(path, limit=None):
        counted.wait(60)
        return real_count(path, limit)

    monkeypatch.setattr(batch_runner, "count_prompts", slow_count)
    openai_server.respond_with(keyed_responder())
    prompts = tmp_path / "p.txt"
    prompts.write_text("".join(keyed(k) + "\n" for k in ("x", "y")))
    ctx = RunContext(llm="openai:test-model", vlm="none", base_url=openai_server.base_url, sandbox="process")
    events = []

    def on_event(event):
        events.append(event)
        if event["event"] == "prompt":
            counted.set()

    run_batch(BatchOptions(prompts, tmp_path / "out", ctx), on_event=on_event)
    kinds = [e["event"] for e in events]
    assert kinds[:2] == ["start", "prompt"] and "total" in kinds
    assert events[1]["total"] is None and events[-1]["total"] == 2


def test_batch_and_prompt_ids_reach_the_tracer(openai_server, tmp_path):
    """LangSmith sees what LangChain's tracers see: the run metadata and tags of every model call."""
    from langchain_core.tracers.context import collect_runs

    openai_server.respond_with(keyed_responder())
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": "traced", "prompt": keyed("traced")}])
    ctx = RunContext(llm="openai:test-model", vlm="none", base_url=openai_server.base_url, sandbox="process")
    with collect_runs() as collector:
        run_batch(BatchOptions(prompts, tmp_path / "out", ctx))
    batch_id = json.loads((tmp_path / "out" / "batch.json").read_text())["batch_id"]
    llm_runs = [r for r in collector.traced_runs if r.run_type == "llm"]
    assert llm_runs, "no model call was traced"
    for run in llm_runs:
        assert run.metadata["coco_batch_id"] == batch_id and run.metadata["coco_prompt_id"] == "traced"
        assert "coco-batch" in run.tags


def test_progress_display_without_json(openai_server, tmp_path, capsys):
    openai_server.respond_with(keyed_responder())
    prompts = tmp_path / "p.txt"
    prompts.write_text(keyed("p1") + "\n")
    args = ["batch", str(prompts), "-o", str(tmp_path / "out"), *model_args(openai_server)]
    assert main(args) == 0
    shown = capsys.readouterr()
    assert "accepted" in shown.err and "1/1" in shown.err
    assert "acceptance" in shown.out and "summary.json" in shown.out
    assert main(args) == 0
    assert "skipped 1" in capsys.readouterr().err
