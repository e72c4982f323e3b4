"""`coco edit`: a person's program continues a run as a new branch of its LangGraph checkpoint history.

Real graph, real SQLite checkpoints, the process sandbox; scripted chat models in-process, and the real CLI with
the langchain-openai client against the local server where the command line is what is tested.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from support.batch_helpers import clean_env, coco, keyed, model_args, write_jsonl
from support.fixtures_models import ScriptedChatModel, Slow
from support.programs import ACCEPT, GOOD_BARS, GOOD_BARS_V2, PROSE, reject

from coco_agent.context import RunContext
from coco_agent.errors import EditRefused, RunBusy, RunDirError
from coco_agent.human.edit import checkpoint_line, edit_point, edit_run
from coco_agent.runlock import run_lock
from coco_agent.runner import start_run
from coco_agent.trace import read_trace

PROMPT = "A bar chart titled 'Quarterly Sales 2025' comparing Q1-Q4 sales: 100, 120, 150, 140"


def source(answer: str) -> str:
    """The program inside a fenced answer."""
    return answer.split("\n", 1)[1].rsplit("```", 1)[0]


GREEN = source(GOOD_BARS).replace("tab:blue", "tab:green")
SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="320" height="200"><rect width="320" height="200" fill="white"/>'
    '<rect x="40" y="60" width="60" height="120" fill="teal"/><rect x="140" y="30" width="60" height="150" '
    'fill="orange"/><text x="20" y="24" font-size="18" font-family="DejaVu Sans">Quarterly Sales 2025</text></svg>\n'
)


def context(coder: list, critic: list | str, **kwargs) -> tuple[RunContext, ScriptedChatModel, object]:
    coder_model = ScriptedChatModel(replies=coder)
    critic_model = ScriptedChatModel(replies=critic) if isinstance(critic, list) else critic
    return (
        RunContext(llm=coder_model, vlm=critic_model, sandbox="process", **kwargs),
        coder_model,
        critic_model,
    )


def forks(line: list[dict]) -> list[str]:
    """Checkpoints with more than one child: where the history branches."""
    children: dict[str, int] = {}
    for c in line:
        if c["parent"]:
            children[c["parent"]] = children.get(c["parent"], 0) + 1
    return [cid for cid, n in children.items() if n > 1]


def test_edit_round_one_of_a_finished_run_forks_and_keeps_the_old_line(tmp_path):
    ctx, coder, critic = context(
        [GOOD_BARS, GOOD_BARS_V2], [reject("the bars must be orange"), ACCEPT, ACCEPT]
    )
    run_dir = tmp_path / "run"
    first = start_run(PROMPT, ctx, run_dir)
    assert first["status"] == "accepted" and first["rounds"] == 2
    before = checkpoint_line(run_dir, ctx=ctx)
    old_round2 = (run_dir / "attempts/02/code.py").read_text()

    point = edit_point(run_dir, 1, ctx=ctx)
    assert point.round == 1 and point.program == (run_dir / "attempts/01/code.py").read_text()
    result = edit_run(run_dir, GREEN, rnd=1, ctx=ctx)

    assert result["status"] == "accepted" and result["rounds"] == 2 and result["best_round"] == 2
    assert [(a["round"], a["source"]) for a in result["attempts"]] == [(1, "model"), (2, "human")]
    assert (run_dir / "attempts/02/code.py").read_text() == GREEN
    assert not (run_dir / "attempts/02/answer.md").exists()  # no model wrote it
    assert coder.calls == 2 and critic.calls == 3  # the human draft was critiqued, no new program asked for
    assert "tab:green" in "".join(str(m.content) for m in critic.received[-1])
    edit = result["edits"][0]
    assert edit["from_round"] == 1 and edit["round"] == 2 and edit["number"] == 1

    # the old line is kept: in the checkpoints (a fork with two children) and on disk under edits/01/replaced
    after = checkpoint_line(run_dir, ctx=ctx)
    assert {c["checkpoint"] for c in before} < {c["checkpoint"] for c in after}
    assert not any(c["current"] for c in after if c["checkpoint"] == before[0]["checkpoint"])
    assert forks(after) == [edit["forked_from"]]
    fork_round = next(c for c in after if c["checkpoint"] == edit["forked_from"])
    assert fork_round["round"] == 1 and fork_round["current"]
    replaced = run_dir / "edits/01/replaced"
    assert (replaced / "attempts/02/code.py").read_text() == old_round2
    assert json.loads((replaced / "result.json").read_text())["attempts"][1]["source"] == "model"
    recorded = json.loads((run_dir / "edits/01/edit.json").read_text())
    assert recorded["forked_from"] == edit["forked_from"]
    first_of_line = next(c for c in after if c["checkpoint"] == recorded["checkpoint"])
    assert first_of_line["parent"] == edit["forked_from"] and first_of_line["current"]
    assert first_of_line["round"] == 2 and first_of_line["next"] == ["repair"]
    saved = json.loads((run_dir / "run.json").read_text())
    assert [e["number"] for e in saved["edits"]] == [1]

    trace = read_trace(run_dir)
    edit_lines = [t for t in trace if t["node"] == "edit"]
    assert len(edit_lines) == 1 and edit_lines[0]["source"] == "human" and edit_lines[0]["round"] == 2
    assert result["attempts"][1]["status"] == "ok"


def test_edit_the_last_round_gets_judged_past_max_rounds(tmp_path):
    ctx, coder, critic = context(
        [GOOD_BARS, GOOD_BARS_V2], [reject("no"), reject("still no"), ACCEPT], max_rounds=2
    )
    run_dir = tmp_path / "run"
    first = start_run(PROMPT, ctx, run_dir)
    assert first["status"] == "max_rounds"
    assert edit_point(run_dir, ctx=ctx).round == first["best_round"]  # default: the chosen round
    result = edit_run(run_dir, GREEN, rnd=2, ctx=ctx)
    assert result["edits"][0]["from_round"] == 2
    assert result["status"] == "accepted" and result["rounds"] == 3
    assert result["attempts"][-1]["source"] == "human" and critic.calls == 3
    edit = json.loads((run_dir / "run.json").read_text())["edits"][-1]
    # the person's round is judged, beyond the run's bound; the run goes on in the format it was drafted in
    assert edit["context"] == {"format": "matplotlib", "max_rounds": 3}


def test_edit_a_run_that_never_drew_anything_is_round_one(tmp_path):
    ctx, coder, _ = context([PROSE], "none", max_rounds=1)
    run_dir = tmp_path / "run"
    assert start_run(PROMPT, ctx, run_dir)["status"] == "failed"
    assert edit_point(run_dir, ctx=ctx).round == 0
    result = edit_run(run_dir, GREEN, ctx=ctx)
    assert result["status"] == "accepted" and result["rounds"] == 1
    assert [(a["round"], a["source"]) for a in result["attempts"]] == [(1, "human")]
    assert (run_dir / "edits/01/replaced/attempts/01/answer.md").read_text().startswith("I would draw")


def test_edit_refusals_change_nothing(tmp_path):
    ctx, _, _ = context([GOOD_BARS], "none")
    run_dir = tmp_path / "run"
    start_run(PROMPT, ctx, run_dir)
    snapshot = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file() and p.name != "run.lock"}

    for bad, why in (
        ("", "empty"),
        ("   \n\t\n", "empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00binary", "binary"),
        (b"\xff\xfe\xfa not utf-8", "not UTF-8"),
        (SVG, "looks like svg"),
    ):
        with pytest.raises(EditRefused, match=why):
            edit_run(run_dir, bad, ctx=ctx)
    with pytest.raises(EditRefused, match="round 7 cannot be edited"):
        edit_run(run_dir, GREEN, rnd=7, ctx=ctx)
    with run_lock(run_dir, "someone else"), pytest.raises(RunBusy, match="someone else"):
        edit_run(run_dir, GREEN, ctx=ctx)
    with pytest.raises(RunDirError, match="not a coco run directory"):
        edit_run(tmp_path, GREEN, ctx=ctx)
    after = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file() and p.name != "run.lock"}
    assert after == snapshot

    # another format is taken when --format says so: the run goes on in SVG
    result = edit_run(run_dir, SVG, fmt="svg", ctx=ctx)
    assert result["status"] == "accepted" and result["format"] == "svg"
    assert (run_dir / "attempts/02/code.svg").read_text() == SVG


def test_edit_then_edit_again_from_the_new_line(tmp_path):
    ctx, _, _ = context([GOOD_BARS], "none")
    run_dir = tmp_path / "run"
    start_run(PROMPT, ctx, run_dir)
    edit_run(run_dir, GREEN, ctx=ctx, critic=False)
    second = edit_run(run_dir, GREEN.replace("tab:green", "tab:red"), ctx=ctx)
    assert [e["number"] for e in second["edits"]] == [1, 2]
    assert [(a["round"], a["source"]) for a in second["attempts"]] == [
        (1, "model"),
        (2, "human"),
        (3, "human"),
    ]
    line = checkpoint_line(run_dir, ctx=ctx)
    rounds = {c["checkpoint"]: c["round"] for c in line if c["current"]}
    assert sorted(rounds[f] for f in forks(line)) == [1, 2]  # edit 2 branched off edit 1's line at round 2
    assert "tab:red" in (run_dir / "attempts/03/code.py").read_text()


# ---------------------------------------------------------------------------------- the command line


def cli_generate(server, run_dir: Path, *extra: str) -> subprocess.CompletedProcess:
    return coco("generate", PROMPT, "-o", str(run_dir), "--json", *model_args(server, "server"), *extra)


def test_cli_edit_with_the_editor_and_with_a_file(openai_server, tmp_path):
    """`coco edit` opens $EDITOR on the chosen round's program; --code FILE takes a file; bad input exits 2."""
    openai_server.script(GOOD_BARS, ACCEPT)
    run_dir = tmp_path / "run"
    assert cli_generate(openai_server, run_dir).returncode == 0
    editor = tmp_path / "editor.sh"
    editor.write_text("#!/bin/sh\nsed -i 's/tab:blue/tab:purple/' \"$1\"\n")
    editor.chmod(0o755)
    openai_server.script(ACCEPT)
    env = clean_env() | {"EDITOR": str(editor)}
    proc = subprocess.run(
        [sys.executable, "-m", "coco_agent.cli", "edit", str(run_dir), "--json"],
        capture_output=True, text=True, env=env, timeout=240, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["attempts"][-1]["source"] == "human" and result["rounds"] == 2
    assert "tab:purple" in (run_dir / "attempts/02/code.py").read_text()

    # an editor that saves the file unchanged: nothing happens
    noop = tmp_path / "noop.sh"
    noop.write_text("#!/bin/sh\ntrue\n")
    noop.chmod(0o755)
    proc = subprocess.run(
        [sys.executable, "-m", "coco_agent.cli", "edit", str(run_dir)],
        capture_output=True, text=True, env=clean_env() | {"EDITOR": str(noop)}, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2 and "unchanged" in proc.stderr

    empty, binary, svg = tmp_path / "empty.py", tmp_path / "bin.py", tmp_path / "x.svg"
    empty.write_text("")
    binary.write_bytes(b"\x00\x01\x02")
    svg.write_text(SVG)
    for path, why in ((empty, "empty"), (binary, "binary"), (svg, "--format svg")):
        proc = coco("edit", str(run_dir), "--code", str(path))
        assert proc.returncode == 2 and why in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr
    proc = coco("edit", str(tmp_path), "--code", str(empty))
    assert proc.returncode == 2 and "not a coco run directory" in proc.stderr
    assert len(json.loads((run_dir / "run.json").read_text())["edits"]) == 1


def test_two_people_continuing_one_run_the_second_is_refused(openai_server, tmp_path):
    """While one `coco edit` runs (its critic call held until the others were refused), a second is refused at
    once; nothing is corrupted."""
    openai_server.script(GOOD_BARS, ACCEPT)
    run_dir = tmp_path / "run"
    assert cli_generate(openai_server, run_dir).returncode == 0
    first, second = tmp_path / "first.py", tmp_path / "second.py"
    first.write_text(GREEN)
    second.write_text(GREEN.replace("tab:green", "tab:red"))
    release = threading.Event()

    def held_verdict(request: dict) -> str:  # the first edit's critic answers only when the checks are done
        release.wait(180)
        return ACCEPT

    openai_server.script(held_verdict)
    args = [sys.executable, "-m", "coco_agent.cli", "edit", str(run_dir), "--code", str(first), "--json"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env())
    try:
        deadline = time.monotonic() + 120
        while not (run_dir / "attempts/02/draft.png").exists():
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline
            time.sleep(0.05)
        refused = coco("edit", str(run_dir), "--code", str(second))
        assert refused.returncode == 2
        assert "being continued by someone else" in refused.stderr and "coco edit" in refused.stderr
        review = coco("resume", str(run_dir))
        assert review.returncode == 2 and "being continued" in review.stderr
        release.set()
        out, err = proc.communicate(timeout=120)
    finally:
        release.set()
        proc.kill()
    assert proc.returncode == 0, err.decode()[-2000:]
    result = json.loads(out)
    assert result["status"] == "accepted" and len(result["edits"]) == 1
    assert "tab:green" in (run_dir / "attempts/02/code.py").read_text()
    assert json.loads((run_dir / "result.json").read_text()) == result
    assert not (run_dir / "edits/02").exists()


def test_edit_an_interrupted_run(openai_server, tmp_path):
    """SIGKILL while round 2's program is being written; `coco edit --round 1` continues from round 1."""
    openai_server.script(GOOD_BARS, reject("orange bars"), Slow(60, GOOD_BARS_V2))
    run_dir = tmp_path / "run"
    args = ["generate", PROMPT, "-o", str(run_dir), "--json", *model_args(openai_server, "server")]
    proc = subprocess.Popen([sys.executable, "-m", "coco_agent.cli", *args], env=clean_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while len(openai_server.chat_requests) < 3:
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
    assert not (run_dir / "result.json").exists()
    program = tmp_path / "fixed.py"
    program.write_text(GREEN)
    openai_server.script(ACCEPT)
    proc = coco("edit", str(run_dir), "--round", "1", "--code", str(program), "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["status"] == "accepted" and [a["source"] for a in result["attempts"]] == ["model", "human"]


def test_edit_a_batch_item_shows_in_summary_and_report(openai_server, tmp_path):
    from support.batch_helpers import keyed_responder

    openai_server.respond_with(keyed_responder())
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": k, "prompt": keyed(k)} for k in ("a", "b")])
    out = tmp_path / "out"
    args = ["batch", str(prompts), "-o", str(out), "--json", *model_args(openai_server)]
    assert coco(*args).returncode == 0
    program = tmp_path / "fixed.py"
    program.write_text(GREEN)
    proc = coco("edit", str(out / "a"), "--code", str(program), "--json")
    assert proc.returncode == 0, proc.stderr
    rerun = coco(*args)
    assert rerun.returncode == 0, rerun.stderr
    events = [json.loads(line) for line in rerun.stdout.splitlines()[:-1]]
    assert {e["id"]: e["how"] for e in events} == {"a": "skipped", "b": "skipped"}
    rows = {r["id"]: r for r in json.loads((out / "summary.json").read_text())["rows"]}
    assert rows["a"]["edited"] == 1 and rows["b"]["edited"] == 0
    assert "edited" in (out / "summary.csv").read_text().splitlines()[0]
    assert coco("report", str(out)).returncode == 0
    html = (out / "report.html").read_text()
    assert html.count("class='badge edited'") == 2  # a's table row and a's section
    assert "written by a person" in html
