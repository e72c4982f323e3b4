"""The engine table (coco_agent/engines): `--engine` picks an entry; `local` runs batches end to end."""

from __future__ import annotations

import json
import sys
import types

import pytest
from support.batch_helpers import coco, keyed, keyed_responder, model_args, requests_for, write_jsonl

from coco_agent import engines
from coco_agent.batch import BatchOptions, run_batch
from coco_agent.cli import main
from coco_agent.context import RunContext


def test_every_entry_is_an_engine_of_that_name():
    assert engines.DEFAULT_ENGINE in engines.ENGINES
    assert BatchOptions("p.txt", "out", RunContext()).engine == engines.DEFAULT_ENGINE
    for name in engines.ENGINES:
        engine = engines.get_engine(name)
        assert engine.name == name and callable(engine.run)


def test_an_unknown_engine_lists_the_choices():
    with pytest.raises(engines.UnknownEngine, match="unknown engine 'spark'; choose from: local, ray"):
        engines.get_engine("spark")


@pytest.mark.parametrize("command", [["batch", "p.txt"], ["bench", "longtext"]])
def test_engine_flag_unknown_value_is_a_usage_error(command, tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        main([*command, "-o", str(tmp_path / "out"), "--engine", "spark"])
    assert stop.value.code == 2
    assert (
        "argument --engine: invalid choice: 'spark' (choose from 'local', 'ray')" in capsys.readouterr().err
    )
    assert not (tmp_path / "out").exists()


def test_run_batch_goes_to_the_engine_the_options_name(monkeypatch, tmp_path):
    """A new engine is a module with ENGINE plus one line in the table; run_batch looks it up by name."""
    calls = []

    class Recorder:
        name = "recorder"

        def run(self, options, *, on_event=None, on_result=None):
            calls.append((options.engine, on_event, on_result))
            return {"n": 0}

    module = types.ModuleType("recorder_engine")
    module.ENGINE = Recorder()
    monkeypatch.setitem(sys.modules, "recorder_engine", module)
    monkeypatch.setitem(engines.ENGINES, "recorder", engines.EngineEntry("recorder_engine", "records calls"))
    options = BatchOptions(tmp_path / "p.txt", tmp_path / "out", RunContext(), engine="recorder")
    assert run_batch(options, on_event=print) == {"n": 0}
    assert calls == [("recorder", print, None)]
    assert "recorder: records calls" in engines.engine_help()


def test_engine_local_end_to_end(openai_server, tmp_path):
    """`coco batch --engine local` (the real CLI in a subprocess): every prompt runs once, batch.json records
    the engine, and a rerun skips them all."""
    openai_server.respond_with(keyed_responder())
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": k, "prompt": keyed(k)} for k in ("a", "b", "c")])
    out = tmp_path / "out"
    args = ["batch", str(prompts), "-o", str(out), "--engine", "local", "--workers", "2", "--json"]
    proc = coco(*args, *model_args(openai_server))
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert {e["id"]: e["how"] for e in lines[:-1]} == {"a": "started", "b": "started", "c": "started"}
    assert lines[-1]["event"] == "summary" and lines[-1]["statuses"]["accepted"] == 3
    assert json.loads((out / "batch.json").read_text())["options"]["engine"] == "local"

    again = coco(*args, *model_args(openai_server))
    assert again.returncode == 0, again.stderr
    assert {json.loads(line)["how"] for line in again.stdout.splitlines()[:-1]} == {"skipped"}
    assert all(len(requests_for(openai_server, k)) == 1 for k in ("a", "b", "c"))
