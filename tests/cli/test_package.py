"""The `coco` CLI as a package: one module per command in one table, one bench group, options declared once with
RunContext's defaults, one exit-code enum, a light --help."""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest

from coco_agent.cli import COMMANDS, build_parser, main
from coco_agent.cli.bench import BENCHMARKS
from coco_agent.cli.exit_codes import ExitCode, for_status
from coco_agent.cli.options import DEFAULTS, RUN_OPTIONS
from coco_agent.context import RunContext


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(actions[0].choices) if actions else {}


def _flags(parser: argparse.ArgumentParser) -> set[str]:
    return {flag for action in parser._actions for flag in action.option_strings}


def test_one_table_of_commands_each_registering_itself() -> None:
    assert all(callable(getattr(module, "register", None)) for module in (*COMMANDS, *BENCHMARKS))
    commands = _subcommands(build_parser())
    assert list(commands) == [
        "generate",
        "resume",
        "replay",
        "render",
        "sandbox",
        "batch",
        "report",
        "score",
        "bench",
        "edit",
        "review",
        "studio",
    ]
    assert set(_subcommands(commands["bench"])) == {"sandbox", "longtext"}
    assert set(_subcommands(commands["sandbox"])) == {"build", "status"}


def test_the_old_modules_are_gone() -> None:
    import coco_agent

    package = Path(coco_agent.__file__).parent
    for name in ("cli.py", "cli_batch.py", "cli_bench.py", "cli_sandbox.py", "cli_score.py"):
        assert not (package / name).exists(), name


def test_run_and_batch_options_are_declared_once_and_shared() -> None:
    commands = _subcommands(build_parser())
    longtext = _subcommands(commands["bench"])["longtext"]
    run_flags = {option.flag for option in RUN_OPTIONS}
    batch_flags = {
        "--workers",
        "--limit",
        "--deadline",
        "--model-concurrency",
        "--retries",
        "--force",
        "--json",
    }
    for parser in (commands["generate"], commands["batch"], longtext):
        assert run_flags <= _flags(parser)
    for parser in (commands["batch"], longtext):
        assert batch_flags <= _flags(parser)
    assert "--retry-failed" in _flags(commands["batch"])


def test_run_option_defaults_are_runcontexts() -> None:
    names = {f.name for f in fields(RunContext)}
    assert {option.field for option in RUN_OPTIONS} <= names
    help_text = _subcommands(build_parser())["generate"].format_help()
    for option in RUN_OPTIONS:
        default = DEFAULTS[option.field]
        if isinstance(default, float | int) and not isinstance(default, bool):
            assert f"(default {default:g})" in " ".join(help_text.split()), option.flag


def test_exit_codes_are_one_enum_with_the_documented_numbers() -> None:
    assert {code.name: int(code) for code in ExitCode} == {
        "OK": 0,
        "FAILED": 1,
        "USAGE": 2,
        "MAX_ROUNDS": 3,
        "PAUSED": 4,
        "BUDGET": 5,
        "INTERRUPTED": 130,
    }
    statuses = ("accepted", "max_rounds", "failed", "paused", "budget", None)
    assert [for_status(s) for s in statuses] == [0, 3, 1, 4, 5, 1]


def test_no_command_and_no_benchmark_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == ExitCode.USAGE and "COMMAND" in capsys.readouterr().out
    assert main(["bench"]) == ExitCode.USAGE and "BENCHMARK" in capsys.readouterr().out
    with pytest.raises(SystemExit) as caught:
        main(["sandbox"])
    assert caught.value.code == ExitCode.USAGE


def test_help_loads_no_heavy_library() -> None:
    code = (
        "import sys, contextlib, io\n"
        "from coco_agent.cli import main\n"
        "for argv in (['--help'], ['generate', '--help'], ['bench', 'longtext', '--help']):\n"
        "    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "        main(argv)\n"
        "heavy = ('langchain', 'langchain_core', 'langgraph', 'torch', 'diffusers', 'matplotlib', 'docker', 'rich')\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & set(heavy)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_python_dash_m_and_the_console_script_agree() -> None:
    import tomllib

    from support.paths import REPO_ROOT

    scripts = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, name = scripts["coco"].partition(":")
    assert getattr(importlib.import_module(module), name) is main
    proc = subprocess.run([sys.executable, "-m", "coco_agent.cli", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "generate" in proc.stdout and "bench" in proc.stdout
