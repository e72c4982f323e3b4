"""Untrusted text is data, never markup or terminal control.

A program's error and output, a model's answer, a critic's verdict, a prompts file, a path: none may crash the
display (rich markup), take over the terminal (escape sequences, C1 controls, bidi overrides), reach `--json` raw,
or cost a batch a prompt. The terminal tests run the real CLI under a pseudo-terminal and read the bytes it wrote.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from support.batch_helpers import clean_env, keyed, keyed_responder, model_args, write_jsonl
from support.programs import GOOD_BARS, reject
from support.terminal import HOSTILE, MARKUP, VISIBLE, run_in_terminal

from coco_agent.batch import BatchOptions, run_batch
from coco_agent.context import RunContext

SHOWN_MARKUP = MARKUP.encode()  # printed as it is written, never parsed
C1_AND_FRIENDS = "\x1b\x7f\x85\x9b\u202e\u2066"


def hostile_program(draws: bool = False) -> str:
    """A program that prints hostile text to stdout and stderr and then fails (or draws nothing)."""
    lines = [
        "import sys",
        f"H = {HOSTILE!r}",
        f"M = {MARKUP!r}",
        "print('out', H, M)",
        "print('err', H, M, file=sys.stderr)",
    ]
    if not draws:
        lines.append("raise ValueError(M + ' ' + H)")
    return "\n".join(lines) + "\n"


def fenced(code: str) -> str:
    return f"```python\n{code}```"


# ---------------------------------------------------------------------------------------------------------
# The text helpers
# ---------------------------------------------------------------------------------------------------------


def test_terminal_text_escapes_controls_visibly():
    from coco_agent.safe_text import terminal_text

    shown = terminal_text("a\x1b]0;t\x07b\tc\nd\r\x00\x7f\x85\x9b\u202a\u202e\u2066\u2069\ud800 é 中 [/]")
    assert shown == (
        r"a\x1b]0;t\x07b" + "\tc\nd" + r"\r\x00\x7f\x85\x9b\u202a\u202e\u2066\u2069\ud800" + " é 中 [/]"
    )
    assert terminal_text(None) == "" and terminal_text(42) == "42"


def test_markup_text_is_literal_for_rich():
    from coco_agent.safe_text import markup_text, safe_console

    console = safe_console(record=True, width=200, color_system=None)
    for text in (MARKUP, "[bold]x[/bold]", "ends in a backslash \\", "\\[/]", ":red_heart: [link=x]y"):
        console.print(f"[red]{markup_text(text)}[/red]")
    lines = console.export_text().splitlines()
    assert lines == [MARKUP, "[bold]x[/bold]", "ends in a backslash \\", "\\[/]", ":red_heart: [link=x]y"]


def test_json_text_escapes_c1_and_round_trips():
    from coco_agent.safe_text import json_text

    data = {"error": f"boom {C1_AND_FRIENDS} é 中 \u2028", "n": [1, "\ud83d"]}
    text = json_text(data, indent=2)
    assert all(ch not in text for ch in C1_AND_FRIENDS + "\u2028\ud83d")
    assert "é 中" in text  # ordinary non-ASCII stays readable
    assert json.loads(text) == data
    text.encode("utf-8")  # a lone surrogate no longer breaks the write


# ---------------------------------------------------------------------------------------------------------
# coco render
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("draws", [False, True], ids=["error", "no_image"])
def test_render_of_a_hostile_program_under_a_terminal(tmp_path, draws):
    """The error (with `[/]` and escape sequences) and the stderr tail are shown escaped; exit 1, no traceback."""
    src = tmp_path / "hostile.py"
    src.write_text(hostile_program(draws))
    shown = run_in_terminal("render", str(src), "-o", str(tmp_path / "x.png"), "--sandbox", "process")
    assert shown.returncode == 1, shown.raw[-3000:]
    shown.assert_harmless(*VISIBLE, SHOWN_MARKUP)


@pytest.mark.docker
def test_render_of_a_hostile_program_in_docker_under_a_terminal(tmp_path, docker_image):
    src = tmp_path / "hostile.py"
    src.write_text(hostile_program())
    shown = run_in_terminal("render", str(src), "-o", str(tmp_path / "x.png"), "--sandbox", "docker")
    assert shown.returncode == 1, shown.raw[-3000:]
    shown.assert_harmless(*VISIBLE, SHOWN_MARKUP)  # --sandbox docker never falls back to another kind


def test_render_json_carries_no_raw_controls(tmp_path):
    src = tmp_path / "hostile.py"
    src.write_text(hostile_program(draws=True))
    proc = subprocess.run(
        [sys.executable, "-m", "coco_agent.cli", "render", str(src), "-o", str(tmp_path / "x.png")]
        + ["--sandbox", "process", "--json"],
        capture_output=True,
        env=clean_env(),
        timeout=120,
    )
    assert proc.returncode == 1
    for seq in (b"\x1b", b"\xc2\x9b", "\u202e".encode()):
        assert seq not in proc.stdout
    report = json.loads(proc.stdout)
    assert HOSTILE in report["stderr_tail"]  # the exact text, escaped only in its JSON spelling


def test_unreadable_paths_and_markup_in_paths_are_shown(tmp_path):
    """File names are untrusted too: `[/]` and an escape sequence in a path are shown, not parsed."""
    src = tmp_path / "a[/]\x1b]0;x\x07.py"
    shown = run_in_terminal("render", str(src), "-o", str(tmp_path / "x.png"), "--sandbox", "process")
    assert shown.returncode == 2
    shown.assert_harmless(b"a[/]", rb"\x1b]0;x\x07.py")


# ---------------------------------------------------------------------------------------------------------
# coco generate
# ---------------------------------------------------------------------------------------------------------


def test_generate_with_a_hostile_program_under_a_terminal(openai_server, tmp_path):
    """The run fails (exit 1) and the summary shows the program's error escaped; the run is not lost."""
    openai_server.respond_with(lambda body: fenced(hostile_program()))
    args = ["generate", "draw [/] bars", "-o", str(tmp_path / "r"), "--max-rounds", "1"]
    shown = run_in_terminal(*args, *model_args(openai_server))
    assert shown.returncode == 1, shown.raw[-3000:]
    shown.assert_harmless(*VISIBLE, SHOWN_MARKUP)
    result = json.loads((tmp_path / "r/result.json").read_text())
    assert result["status"] == "failed" and HOSTILE in result["error"]
    assert "internal error" not in result["error"]


def test_generate_with_a_hostile_critic_under_a_terminal(openai_server, tmp_path):
    """A verdict whose problems hold markup and escapes is shown escaped; the run ends max_rounds (exit 3)."""
    problem = f"{HOSTILE} {MARKUP}"
    openai_server.script(GOOD_BARS, reject(problem))
    args = ["generate", "bars", "-o", str(tmp_path / "r"), "--max-rounds", "1"]
    shown = run_in_terminal(*args, *model_args(openai_server, vlm="server"))
    assert shown.returncode == 3, shown.raw[-3000:]
    shown.assert_harmless(*VISIBLE, SHOWN_MARKUP)
    assert json.loads((tmp_path / "r/result.json").read_text())["status"] == "max_rounds"


def test_generate_json_carries_no_raw_controls(openai_server, tmp_path):
    openai_server.respond_with(lambda body: fenced(hostile_program()))
    proc = subprocess.run(
        [sys.executable, "-m", "coco_agent.cli", "generate", "bars", "-o", str(tmp_path / "r")]
        + ["--max-rounds", "1", "--json", *model_args(openai_server)],
        capture_output=True,
        env=clean_env(),
        timeout=240,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 1, proc.stderr[-3000:]
    for seq in (b"\x1b", b"\xc2\x9b", "\u202e".encode()):
        assert seq not in proc.stdout
    result = json.loads(proc.stdout)
    assert HOSTILE in result["error"]
    on_disk = (tmp_path / "r/result.json").read_bytes()
    assert b"\xc2\x9b" not in on_disk and json.loads(on_disk) == result


def test_model_names_and_verdicts_in_the_summary_table(capsys):
    """print_summary takes every field as data."""
    from coco_agent.progress import print_summary

    result = {
        "status": "failed",
        "rounds": 1,
        "max_rounds": 1,
        "error": f"{MARKUP} {HOSTILE}",
        "models": {"coder": "openai:[/]x", "critic": "[bold]y"},
        "sandbox": "process",
        "seconds": 1.0,
        "seconds_per_node": {},
        "paths": {"run_dir": "runs/[/]", "final": "final.png"},
    }
    print_summary(result)
    err = capsys.readouterr().err
    assert MARKUP in err and "openai:[/]x" in err and "[bold]y" in err and "runs/[/]" in err
    assert "\x1b" not in err and r"\x1b]52;" in err


def test_a_display_that_raises_does_not_fail_the_run(openai_server, tmp_path, capsys):
    """A progress callback that raises costs the screen an update, never the run."""
    from coco_agent.runner import start_run

    openai_server.script(GOOD_BARS)
    ctx = RunContext(llm="openai:test-model", vlm="none", base_url=openai_server.base_url, sandbox="process")

    def broken_display(node, update):
        raise RuntimeError(f"display broke on {HOSTILE} {MARKUP}")

    result = start_run("bars", ctx, tmp_path / "r", on_update=broken_display)
    assert result["status"] == "accepted" and not result.get("error")
    err = capsys.readouterr().err
    assert "display broke" in err and "\x1b" not in err and r"\x1b]52;" in err
    assert err.count("display failed") == 3  # then only counted


# ---------------------------------------------------------------------------------------------------------
# coco batch
# ---------------------------------------------------------------------------------------------------------


# A batch folder whose name holds markup and escape sequences (relative, so that it starts the error line).
HOSTILE_OUT = f"o[/]{HOSTILE}"


def hostile_batch(openai_server, tmp_path, *extra: str) -> list[str]:
    """The `coco batch` arguments for a rerun in which the first of three prompts fails with an error naming
    HOSTILE_OUT: its text changed since the first run made OUT/bad (a conflict), the other two are new."""
    openai_server.respond_with(keyed_responder())
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": "bad", "prompt": keyed("bad")}])
    args = ["batch", str(prompts), "-o", HOSTILE_OUT, "--workers", "1", *model_args(openai_server), *extra]
    first = subprocess.run(
        [sys.executable, "-m", "coco_agent.cli", *args],
        capture_output=True,
        env=clean_env(),
        timeout=240,
        stdin=subprocess.DEVNULL,
        cwd=tmp_path,
    )
    assert first.returncode == 0, first.stderr[-3000:]
    records = [{"id": "bad", "prompt": keyed("bad", "A pie chart")}]
    write_jsonl(prompts, records + [{"id": key, "prompt": keyed(key)} for key in ("good1", "good2")])
    return args


def test_batch_with_hostile_errors_under_a_terminal(openai_server, tmp_path):
    """The failing prompt's error is logged escaped; the worker goes on, every prompt has an outcome, exit 0."""
    args = hostile_batch(openai_server, tmp_path)
    shown = run_in_terminal(*args, cwd=tmp_path)
    assert shown.returncode == 0, shown.raw[-3000:]
    shown.assert_harmless(rb"o[/]\x1b]52;c;ZXZpbA==\x07 \x1b]0;pwned\x07", b"holds a run")
    summary = json.loads((tmp_path / HOSTILE_OUT / "summary.json").read_text())
    assert summary["statuses"] == {
        "accepted": 2,
        "max_rounds": 0,
        "budget": 0,
        "failed": 1,
        "paused": 0,
        "pending": 0,
    }


def test_batch_json_carries_no_raw_controls(openai_server, tmp_path):
    args = hostile_batch(openai_server, tmp_path, "--json")
    proc = subprocess.run(
        [sys.executable, "-m", "coco_agent.cli", *args],
        capture_output=True,
        env=clean_env(),
        timeout=240,
        stdin=subprocess.DEVNULL,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    for seq in (b"\x1b", b"\xc2\x9b", "\u202e".encode()):
        assert seq not in proc.stdout
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert HOSTILE in events[0]["error"] and events[-1]["statuses"]["pending"] == 0
    assert b"\xc2\x9b" not in (tmp_path / HOSTILE_OUT / "summary.json").read_bytes()


def test_a_display_that_raises_loses_no_prompt(openai_server, tmp_path, capsys):
    """Whatever the progress display does wrong, every prompt runs and gets its result."""
    openai_server.respond_with(keyed_responder())
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": k, "prompt": keyed(k)} for k in ("a", "b", "c")])
    ctx = RunContext(llm="openai:test-model", vlm="none", base_url=openai_server.base_url, sandbox="process")
    calls = []

    def broken_display(event):
        calls.append(event["event"])
        if event["event"] != "start":
            raise RuntimeError(f"display broke on {HOSTILE} {MARKUP}")

    summary = run_batch(BatchOptions(prompts, tmp_path / "out", ctx), on_event=broken_display)
    assert summary["statuses"] == {
        "accepted": 3,
        "max_rounds": 0,
        "budget": 0,
        "failed": 0,
        "paused": 0,
        "pending": 0,
    }
    assert calls.count("prompt") == 3
    for key in ("a", "b", "c"):
        assert json.loads((tmp_path / "out" / key / "result.json").read_text())["status"] == "accepted"
    err = capsys.readouterr().err
    assert "display broke" in err and "\x1b" not in err and r"\x1b]52;" in err


def test_a_result_json_that_is_no_object_fails_that_prompt_alone(openai_server, tmp_path):
    """A finished run whose result.json was replaced by a JSON list: that prompt fails, the next one still runs."""
    openai_server.respond_with(keyed_responder())
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": "a", "prompt": keyed("a")}])
    ctx = RunContext(llm="openai:test-model", vlm="none", base_url=openai_server.base_url, sandbox="process")
    run_batch(BatchOptions(prompts, tmp_path / "out", ctx))
    (tmp_path / "out/a/result.json").write_text("[]")
    write_jsonl(prompts, [{"id": k, "prompt": keyed(k)} for k in ("a", "b")])
    events = []
    summary = run_batch(BatchOptions(prompts, tmp_path / "out", ctx), on_event=events.append)
    assert summary["statuses"] == {
        "accepted": 1,
        "max_rounds": 0,
        "budget": 0,
        "failed": 1,
        "paused": 0,
        "pending": 0,
    }
    prompt_events = {e["id"]: e for e in events if e["event"] == "prompt"}
    assert prompt_events["a"]["status"] == "failed" and "AttributeError" in prompt_events["a"]["error"]


def test_a_worker_that_dies_makes_the_exit_code_say_so(openai_server, tmp_path, monkeypatch, capsys):
    """Should a worker end early anyway, prompts left pending make `coco batch` exit 1, not 0."""
    from coco_agent.cli import main
    from coco_agent.engines import local as runner

    openai_server.respond_with(keyed_responder())
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": k, "prompt": keyed(k)} for k in ("a", "b")])

    async def one_then_die(self, items):
        item = next(items)
        self.on_event((await self.one(item)) | {"done": 1, "total": self.total})
        raise RuntimeError("worker died")

    monkeypatch.setattr(runner.BatchDriver, "_worker", one_then_die)
    code = main(
        ["batch", str(prompts), "-o", str(tmp_path / "out"), "--workers", "1", *model_args(openai_server)]
    )
    assert code == 1
    assert "1 prompt(s) have no outcome" in capsys.readouterr().err
